/**
 * One integration's page at /integrations/:id/*: where it stands (state, last and next run,
 * lag, a run in progress with its progress), its actions (editors), and tabs, each at its own
 * address: overview (charts) at the page's root, then runs, links (and links/:linkId for one
 * pair's history), history, failed, conflicts.
 */
import { useNavigate, useParams } from "react-router";
import { Badge, Group, Stack, Tabs } from "@mantine/core";
import { ApiError } from "../../api/client";
import { can, useMe } from "../../auth";
import { PageHeader } from "../../components/PageHeader";
import { QueryState } from "../../components/QueryState";
import { NotFoundPage } from "../../components/NotFoundPage";
import { useIntegration, useOverview, useSideNames } from "./queries";
import { STATE } from "./runs";
import { IntegrationActions } from "./IntegrationActions";
import { StatusSummary } from "./StatusSummary";
import { OverviewTab } from "./OverviewTab";
import { RunsTab } from "./RunsTab";
import { LinksTab } from "./LinksTab";
import { HistoryTab } from "./HistoryTab";
import { FailedTab } from "./FailedTab";
import { ConflictsTab } from "./ConflictsTab";

const TABS = ["overview", "runs", "links", "history", "failed", "conflicts"] as const;
type Tab = (typeof TABS)[number];

export function IntegrationPage() {
  const params = useParams();
  const id = Number(params.id);
  const rest = (params["*"] ?? "").split("/").filter(Boolean);
  const tab: Tab = (TABS as readonly string[]).includes(rest[0] ?? "") ? (rest[0] as Tab) : "overview";
  if (!Number.isSafeInteger(id) || id < 1 || (rest.length > 0 && tab === "overview")) {
    return <NotFoundPage />;
  }
  return <Integration id={id} tab={tab} rest={rest.slice(1)} />;
}

function Integration({ id, tab, rest }: { id: number; tab: Tab; rest: string[] }) {
  const me = useMe();
  const navigate = useNavigate();
  const integration = useIntegration(id);
  const overview = useOverview(id);
  const sides = useSideNames(integration.data?.spec);
  const base = `/integrations/${id}`;
  if (integration.error instanceof ApiError && integration.error.status === 404) {
    return <NotFoundPage />;
  }
  return (
    <QueryState query={integration} what="the integration">
      {(item) => {
        const names = sides!;
        const state = STATE[item.state];
        const conflicts = overview.data?.open_conflicts ?? item.open_conflicts;
        const failing = overview.data?.failing_items ?? item.failing_items;
        return (
          <Stack gap="md">
            <PageHeader
              title={item.name}
              description={
                <Group gap="xs" component="span">
                  <Badge color={state.color} variant="light" component="span">
                    {state.label}
                  </Badge>
                  <span>
                    {names.a.app} · {names.a.container} ⇄ {names.b.app} · {names.b.container}
                  </span>
                </Group>
              }
              actions={can(me, "editor") ? <IntegrationActions integration={item} /> : undefined}
            />
            <StatusSummary overview={overview} sides={names} />
            <Tabs
              value={tab}
              onChange={(value) => navigate(value === "overview" || !value ? base : `${base}/${value}`)}
              keepMounted={false}
            >
              <Tabs.List aria-label="Integration sections">
                <Tabs.Tab value="overview">Overview</Tabs.Tab>
                <Tabs.Tab value="runs">Runs</Tabs.Tab>
                <Tabs.Tab value="links">Linked items</Tabs.Tab>
                <Tabs.Tab value="history">History</Tabs.Tab>
                <Tabs.Tab value="failed" rightSection={<Count value={failing} color="red" />}>
                  Failed items
                </Tabs.Tab>
                <Tabs.Tab value="conflicts" rightSection={<Count value={conflicts} color="orange" />}>
                  Conflicts
                </Tabs.Tab>
              </Tabs.List>
              <Tabs.Panel value="overview" pt="md">
                <OverviewTab id={id} integration={item} overview={overview} />
              </Tabs.Panel>
              <Tabs.Panel value="runs" pt="md">
                <RunsTab id={id} />
              </Tabs.Panel>
              <Tabs.Panel value="links" pt="md">
                <LinksTab id={id} sides={names} linkId={rest[0] ? Number(rest[0]) : null} />
              </Tabs.Panel>
              <Tabs.Panel value="history" pt="md">
                <HistoryTab id={id} sides={names} />
              </Tabs.Panel>
              <Tabs.Panel value="failed" pt="md">
                <FailedTab id={id} sides={names} />
              </Tabs.Panel>
              <Tabs.Panel value="conflicts" pt="md">
                <ConflictsTab id={id} sides={names} />
              </Tabs.Panel>
            </Tabs>
          </Stack>
        );
      }}
    </QueryState>
  );
}

/** A tab's count; the number is also text (not only the badge's colour), and none shows for 0. */
function Count({ value, color }: { value: number; color: string }) {
  if (!value) {
    return null;
  }
  return (
    <Badge size="sm" color={color} variant="filled" circle={value < 10}>
      {value}
    </Badge>
  );
}

