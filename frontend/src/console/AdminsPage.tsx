import { PageHeader } from "../components/PageHeader";

export function AdminsPage() {
  return <PageHeader title="AdminsPage" />;
}
