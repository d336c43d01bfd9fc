import { PageHeader } from "../../components/PageHeader";

export function IntegrationBuilder() {
  return <PageHeader title="IntegrationBuilder" />;
}
