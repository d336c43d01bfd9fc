import { PageHeader } from "../components/PageHeader";

export function ConnectionsPage() {
  return <PageHeader title="ConnectionsPage" />;
}
