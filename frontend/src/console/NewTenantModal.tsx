import { useState } from "react";
import { useMutation, useQueryClient } from "@tanstack/react-query";
import { Alert, Button, Group, Modal, Stack, Text, TextInput } from "@mantine/core";
import { useForm } from "@mantine/form";
import { api, ApiError, unwrap, type Schemas } from "../api/client";
import { boot } from "../boot";
import { applyApiErrors, shownOnForm } from "../lib/forms";
import { OneTimeSecret } from "../shared/OneTimeSecret";
import { slugFromName, slugProblem } from "./slug";

type Created = Schemas["TenantCreated"];

/**
 * Create a tenant: display name, slug (checked as it is typed, suggested from the name
 * until edited), optional first admin. Afterwards the modal shows the tenant's address and
 * the first admin's generated password, once.
 */
export function NewTenantModal({ opened, onClose }: { opened: boolean; onClose: () => void }) {
  const client = useQueryClient();
  const [slugEdited, setSlugEdited] = useState(false);
  const [created, setCreated] = useState<Created | null>(null);
  const form = useForm({
    mode: "controlled",
    initialValues: { display_name: "", slug: "", admin_email: "" },
    validateInputOnChange: ["slug"],
    validate: {
      display_name: (value) => (value.trim() ? null : "Enter a display name"),
      slug: (value) => slugProblem(value),
      admin_email: (value) => (!value.trim() || /^[^\s@]+@[^\s@]+$/.test(value.trim()) ? null : "Enter an e-mail address, or leave it empty"),
    },
  });
  const create = useMutation({
    mutationFn: (values: typeof form.values) =>
      unwrap(
        api.POST("/api/v1/cluster/tenants", {
          body: { slug: values.slug, display_name: values.display_name.trim(), admin_email: values.admin_email.trim() || null, admin_password: null },
        }),
      ),
    onSuccess: (result) => {
      setCreated(result);
      client.invalidateQueries({ queryKey: ["tenants"] });
    },
    onError: (error) => {
      if (error instanceof ApiError && error.status === 409) {
        form.setFieldError("slug", error.message);
        return;
      }
      applyApiErrors(error, form.setFieldError, ["slug", "display_name", "admin_email"], { admin_password: "admin_email" });
    },
  });
  const close = () => {
    form.reset();
    setSlugEdited(false);
    setCreated(null);
    create.reset();
    onClose();
  };
  const slug = form.values.slug;
  const host = slug && !slugProblem(slug) ? `${slug}.${boot.domain}` : null;
  return (
    <Modal opened={opened} onClose={close} title={created ? "Tenant created" : "New tenant"} centered size="lg">
      {created ? (
        <Stack>
          <Text>
            Tenant <b>{created.tenant.display_name}</b> is ready at{" "}
            <b>
              https://{created.tenant.slug}.{boot.domain}
            </b>
            ; its worker starts within seconds.
          </Text>
          {created.admin && (
            created.admin.password ? (
              <OneTimeSecret label="first admin's password" value={created.admin.password} note={`Give it to ${created.admin.email}; they can change it after signing in.`} />
            ) : (
              <Text size="sm">First admin: {created.admin.email}</Text>
            )
          )}
          <Group justify="flex-end">
            <Button onClick={close}>Done</Button>
          </Group>
        </Stack>
      ) : (
        <form onSubmit={form.onSubmit((values) => create.mutate(values))} noValidate>
          <Stack>
            {create.isError && !shownOnForm(create.error) && (
              <Alert color="red" role="alert" title="Not created">
                {create.error.message}
              </Alert>
            )}
            <TextInput
              label="Display name"
              required
              data-autofocus
              {...form.getInputProps("display_name")}
              onChange={(event) => {
                const name = event.currentTarget.value;
                form.setFieldValue("display_name", name);
                if (!slugEdited) {
                  form.setFieldValue("slug", slugFromName(name));
                }
              }}
            />
            <TextInput
              label="Slug"
              required
              description={host ? `The tenant's address: https://${host}` : "Lower-case letters, digits and '-': it becomes the tenant's host name"}
              autoComplete="off"
              spellCheck={false}
              {...form.getInputProps("slug")}
              onChange={(event) => {
                setSlugEdited(true);
                form.setFieldValue("slug", event.currentTarget.value);
              }}
            />
            <TextInput
              label="First admin e-mail"
              type="email"
              description="Optional. A password is generated and shown once."
              autoComplete="off"
              {...form.getInputProps("admin_email")}
            />
            <Group justify="flex-end">
              <Button variant="default" onClick={close}>
                Cancel
              </Button>
              <Button type="submit" loading={create.isPending}>
                Create tenant
              </Button>
            </Group>
            {create.isPending && (
              <Text size="sm" role="status">
                Creating the tenant's schema and running its migrations…
              </Text>
            )}
          </Stack>
        </form>
      )}
    </Modal>
  );
}
