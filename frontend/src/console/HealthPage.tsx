import { PageHeader } from "../components/PageHeader";

export function HealthPage() {
  return <PageHeader title="HealthPage" />;
}
