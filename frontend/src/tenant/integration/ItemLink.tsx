import { Anchor, Text, VisuallyHidden } from "@mantine/core";
import { itemHref } from "./sides";

/**
 * An item's key, linking to the item in its app in a new tab (rel="noopener noreferrer": the
 * app's page gets no handle on the panel and no referrer naming the appliance). The link's
 * name says where it goes.
 */
export function ItemLink({ itemKey, url, app }: { itemKey: string; url: string; app: string }) {
  const href = itemHref(url);
  if (!href) {
    return <Text span fw={500}>{itemKey}</Text>;
  }
  return (
    <Anchor href={href} target="_blank" rel="noopener noreferrer" fw={500}>
      {itemKey}
      <VisuallyHidden> (open in {app}, new tab)</VisuallyHidden>
      <span aria-hidden> ↗</span>
    </Anchor>
  );
}
