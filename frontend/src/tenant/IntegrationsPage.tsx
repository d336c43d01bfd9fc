import { PageHeader } from "../components/PageHeader";

export function IntegrationsPage() {
  return <PageHeader title="IntegrationsPage" />;
}
