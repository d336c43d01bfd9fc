import { PageHeader } from "../../components/PageHeader";

export function IntegrationPage() {
  return <PageHeader title="IntegrationPage" />;
}
