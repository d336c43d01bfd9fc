/**
 * The panel: one app for both realms. The host decides which (the shell's boot block
 * says so): the bare cluster domain is the cluster console, `<slug>.<domain>` a tenant's
 * workspace. Navigation shows what the signed-in role may use; the API enforces it.
 */
import { Suspense, type ReactNode } from "react";
import { BrowserRouter, NavLink as RouterLink, Route, Routes, useLocation } from "react-router";
import { AppShell, Badge, Button, Center, Group, Loader, NavLink, ScrollArea, Stack, Text, Title } from "@mantine/core";
import { boot } from "./boot";
import { can, RequireSignIn, useMe, useSignOut, type Role } from "./auth";
import { NotFoundPage } from "./components/NotFoundPage";
import { AccountPage } from "./AccountPage";
import { AuditPage } from "./shared/AuditPage";
import { TenantsPage } from "./console/TenantsPage";
import { HealthPage } from "./console/HealthPage";
import { AdminsPage } from "./console/AdminsPage";
import { IntegrationsPage } from "./tenant/IntegrationsPage";
import { IntegrationPage } from "./tenant/integration/IntegrationPage";
import { IntegrationBuilder } from "./tenant/builder/IntegrationBuilder";
import { ConnectionsPage } from "./tenant/ConnectionsPage";
import { UsersPage } from "./tenant/UsersPage";
import { TokensPage } from "./tenant/TokensPage";

interface Page {
  path: string;
  element: ReactNode;
  /** In the navigation with this label (pages reached from other pages have none). */
  label?: string;
  role: Role;
}

const CONSOLE_PAGES: Page[] = [
  { path: "/", element: <TenantsPage />, label: "Tenants", role: "viewer" },
  { path: "/health", element: <HealthPage />, label: "Cluster health", role: "viewer" },
  { path: "/admins", element: <AdminsPage />, label: "Cluster admins", role: "admin" },
  { path: "/audit", element: <AuditPage />, label: "Audit log", role: "admin" },
  { path: "/account", element: <AccountPage />, role: "viewer" },
];

const TENANT_PAGES: Page[] = [
  { path: "/", element: <IntegrationsPage />, label: "Integrations", role: "viewer" },
  { path: "/integrations/new", element: <IntegrationBuilder />, role: "editor" },
  { path: "/integrations/:id/edit", element: <IntegrationBuilder />, role: "editor" },
  { path: "/integrations/:id/*", element: <IntegrationPage />, role: "viewer" },
  { path: "/connections", element: <ConnectionsPage />, label: "Connections", role: "viewer" },
  { path: "/users", element: <UsersPage />, label: "Users", role: "admin" },
  { path: "/tokens", element: <TokensPage />, label: "API tokens", role: "viewer" },
  { path: "/audit", element: <AuditPage />, label: "Audit log", role: "admin" },
  { path: "/account", element: <AccountPage />, role: "viewer" },
];

export const PAGES = boot.realm === "tenant" ? TENANT_PAGES : CONSOLE_PAGES;

function Navigation() {
  const me = useMe();
  const location = useLocation();
  return (
    <Stack gap={2} component="nav" aria-label="Main">
      {PAGES.filter((page) => page.label && can(me, page.role)).map((page) => (
        <NavLink
          key={page.path}
          component={RouterLink}
          to={page.path}
          label={page.label}
          active={page.path === "/" ? location.pathname === "/" || location.pathname.startsWith("/integrations") && boot.realm === "tenant" : location.pathname.startsWith(page.path)}
        />
      ))}
    </Stack>
  );
}

function Header() {
  const me = useMe();
  const signOut = useSignOut();
  const where = boot.realm === "tenant" ? boot.tenant : `${boot.cluster} console`;
  const who = me.display_name || me.email;
  return (
    <Group h="100%" px="md" justify="space-between">
      <Group gap="sm">
        <Title order={1} size="h4">
          Tandem
        </Title>
        <Badge variant="light" size="lg" aria-label={boot.realm === "tenant" ? "Tenant" : "Cluster"}>
          {where}
        </Badge>
      </Group>
      <Group gap="sm">
        {/* The name starts with what the button shows, as speech input users will say it. */}
        <Button component={RouterLink} to="/account" variant="subtle" aria-label={`${who} · ${me.role}: your account`}>
          {who} · {me.role}
        </Button>
        <Button variant="default" onClick={() => signOut.mutate()} loading={signOut.isPending}>
          Sign out
        </Button>
      </Group>
    </Group>
  );
}

function Allowed({ page }: { page: Page }) {
  const me = useMe();
  if (!can(me, page.role)) {
    return (
      <Center p="xl">
        <Text role="alert">This page needs the {page.role} role; you are {me.role}.</Text>
      </Center>
    );
  }
  return <>{page.element}</>;
}

export function Layout() {
  return (
    <AppShell header={{ height: 56 }} navbar={{ width: 220, breakpoint: 0 }} padding="lg">
      <AppShell.Header>
        <Header />
      </AppShell.Header>
      <AppShell.Navbar p="sm">
        <ScrollArea>
          <Navigation />
        </ScrollArea>
      </AppShell.Navbar>
      <AppShell.Main>
        <Suspense fallback={<Loader aria-label="Loading" />}>
          <Routes>
            {PAGES.map((page) => (
              <Route key={page.path} path={page.path} element={<Allowed page={page} />} />
            ))}
            <Route path="*" element={<NotFoundPage />} />
          </Routes>
        </Suspense>
      </AppShell.Main>
    </AppShell>
  );
}

export function App() {
  return (
    <BrowserRouter>
      <RequireSignIn>
        <Layout />
      </RequireSignIn>
    </BrowserRouter>
  );
}
