/** What the appliance's HTML shell tells the panel before any request (see appliance/web/panel.py). */
export interface Boot {
  realm: "console" | "tenant";
  tenant: string | null;
  cluster: string;
  domain: string;
  csrf: string | null;
  nonce: string | undefined;
  /** Whether the appliance's shell rendered this page (false in unit tests and Vite's own index.html). */
  fromShell: boolean;
}

export function readBoot(doc: Document = document): Boot {
  const element = doc.getElementById("tandem-boot") as HTMLScriptElement | null;
  const data = element ? JSON.parse(element.textContent || "{}") : {};
  return {
    realm: data.realm === "tenant" ? "tenant" : "console",
    tenant: data.tenant ?? null,
    cluster: data.cluster ?? "",
    domain: data.domain ?? "",
    csrf: data.csrf ?? null,
    // The nonce attribute is hidden from the DOM once parsed; the property keeps it.
    nonce: element?.nonce || undefined,
    fromShell: element !== null,
  };
}

export const boot: Boot = readBoot();
