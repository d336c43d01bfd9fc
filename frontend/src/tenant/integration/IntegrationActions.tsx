/**
 * An integration's actions, for editors: Sync now, Pause/Resume (Enable when disabled), Edit,
 * Delete (confirmed by typing the integration's name). Each refreshes the page; an API refusal
 * (a paused integration cannot sync) is shown as a notification saying why.
 */
import { useState } from "react";
import { Link, useNavigate } from "react-router";
import { useMutation, useQueryClient } from "@tanstack/react-query";
import { Button } from "@mantine/core";
import { notifications } from "@mantine/notifications";
import { api, messageOf, unwrap, type Schemas } from "../../api/client";
import { ConfirmByTyping } from "../../components/ConfirmByTyping";
import { useRefreshIntegration } from "./queries";

type Integration = Schemas["IntegrationOut"];

export function IntegrationActions({ integration }: { integration: Integration }) {
  const id = integration.id;
  const refresh = useRefreshIntegration(id);
  const client = useQueryClient();
  const navigate = useNavigate();
  const [deleting, setDeleting] = useState(false);
  const path = { params: { path: { id } } };
  const failed = (title: string) => (error: unknown) =>
    notifications.show({ color: "red", title, message: messageOf(error) });

  const syncNow = useMutation({
    mutationFn: () => unwrap(api.POST("/api/v1/integrations/{id}/sync-now", path)),
    onSuccess: () => {
      notifications.show({ title: "Sync requested", message: `${integration.name}: a run starts within a few seconds.` });
      refresh();
    },
    onError: failed("Could not start a sync"),
  });
  const switchState = useMutation({
    mutationFn: (action: "pause" | "resume" | "enable") =>
      action === "pause"
        ? unwrap(api.POST("/api/v1/integrations/{id}/pause", path))
        : action === "resume"
          ? unwrap(api.POST("/api/v1/integrations/{id}/resume", path))
          : unwrap(api.POST("/api/v1/integrations/{id}/enable", path)),
    onSuccess: (_, action) => {
      const done = { pause: "paused", resume: "resumed", enable: "enabled" }[action];
      notifications.show({ title: `Integration ${done}`, message: integration.name });
      refresh();
      client.invalidateQueries({ queryKey: ["integrations"] });
    },
    onError: failed("The integration did not change"),
  });
  const remove = useMutation({
    mutationFn: () => unwrap(api.DELETE("/api/v1/integrations/{id}", path)),
    onSuccess: () => {
      notifications.show({ title: "Integration deleted", message: `${integration.name}: the items in the apps stay.` });
      client.removeQueries({ queryKey: ["integration", id] });
      client.invalidateQueries({ queryKey: ["integrations"] });
      navigate("/");
    },
  });

  const active = integration.state === "active";
  return (
    <>
      <Button onClick={() => syncNow.mutate()} loading={syncNow.isPending} disabled={!active}
        title={active ? undefined : `Sync now needs an active integration; this one is ${integration.state}.`}>
        Sync now
      </Button>
      {integration.state === "disabled" ? (
        <Button variant="default" onClick={() => switchState.mutate("enable")} loading={switchState.isPending}>
          Enable
        </Button>
      ) : (
        <Button
          variant="default"
          onClick={() => switchState.mutate(integration.paused ? "resume" : "pause")}
          loading={switchState.isPending}
        >
          {integration.paused ? "Resume" : "Pause"}
        </Button>
      )}
      <Button variant="default" component={Link} to={`/integrations/${id}/edit`}>
        Edit
      </Button>
      <Button variant="outline" color="red" onClick={() => setDeleting(true)}>
        Delete
      </Button>
      <ConfirmByTyping
        opened={deleting}
        onClose={() => {
          setDeleting(false);
          remove.reset();
        }}
        title={`Delete ${integration.name}?`}
        word={integration.name}
        consequence="Its links, runs, history and conflicts are deleted; the items in both apps stay as they are."
        action="Delete integration"
        onConfirm={() => remove.mutate()}
        pending={remove.isPending}
        error={remove.error}
      />
    </>
  );
}
