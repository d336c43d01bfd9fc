/**
 * Who is signed in on this host, sign-in and sign-out. The host decides the realm: the
 * console's host knows cluster admins, a tenant's host that tenant's users.
 */
import { createContext, useContext, useEffect, type ReactNode } from "react";
import { useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import { Alert, Button, Center, Loader, Paper, PasswordInput, Stack, Text, TextInput, Title } from "@mantine/core";
import { useForm } from "@mantine/form";
import { api, ApiError, messageOf, onUnauthorized, setCsrfToken, unwrap, type Schemas } from "./api/client";
import { boot } from "./boot";

export type Me = Schemas["Me"];
export type Role = Me["role"];

const ROLE_RANK: Record<Role, number> = { viewer: 0, editor: 1, admin: 2 };

/** Whether `me` has at least `role` (admin > editor > viewer). */
export function can(me: Me | null | undefined, role: Role): boolean {
  return !!me && ROLE_RANK[me.role] >= ROLE_RANK[role];
}

const MeContext = createContext<Me | null>(null);

/** The signed-in user; only inside <RequireSignIn>. */
export function useMe(): Me {
  const me = useContext(MeContext);
  if (!me) {
    throw new Error("useMe() outside <RequireSignIn>");
  }
  return me;
}

export const ME_KEY = ["me"] as const;

async function fetchMe(): Promise<Me | null> {
  try {
    const me = await unwrap(api.GET("/api/v1/me"));
    setCsrfToken(me.csrf_token ?? null);
    return me;
  } catch (error) {
    if (error instanceof ApiError && error.status === 401) {
      return null;
    }
    throw error;
  }
}

/** Shows the sign-in form until someone is signed in, then `children` with useMe(). */
export function RequireSignIn({ children }: { children: ReactNode }) {
  const client = useQueryClient();
  const me = useQuery({
    queryKey: ME_KEY,
    queryFn: fetchMe,
    staleTime: 60_000,
    retry: false,
    // The shell carries a CSRF token exactly when this browser has a session: without one,
    // show the sign-in form at once instead of asking the API (and logging its 401).
    initialData: boot.fromShell && !boot.csrf ? null : undefined,
    initialDataUpdatedAt: boot.fromShell && !boot.csrf ? Date.now() : undefined,
  });
  useEffect(() => onUnauthorized(() => client.invalidateQueries({ queryKey: ME_KEY })), [client]);
  if (me.isPending) {
    return (
      <Center h="100vh">
        <Loader aria-label="Loading" />
      </Center>
    );
  }
  if (me.isError) {
    return (
      <Center h="100vh">
        <Alert color="red" title="The appliance cannot be reached" role="alert">
          {messageOf(me.error)}
        </Alert>
      </Center>
    );
  }
  if (!me.data) {
    return <SignIn />;
  }
  return <MeContext.Provider value={me.data}>{children}</MeContext.Provider>;
}

function SignIn() {
  const client = useQueryClient();
  const form = useForm({
    initialValues: { email: "", password: "" },
    validate: {
      email: (value) => (value.trim() ? null : "Enter your e-mail address"),
      password: (value) => (value ? null : "Enter your password"),
    },
  });
  const login = useMutation({
    mutationFn: (values: { email: string; password: string }) =>
      unwrap(api.POST("/api/v1/auth/login", { body: values })),
    onSuccess: (result) => {
      setCsrfToken(result.csrf_token ?? null);
      client.setQueryData(ME_KEY, result);
    },
  });
  const where = boot.realm === "tenant" ? `${boot.tenant} workspace` : `${boot.cluster} cluster console`;
  return (
    <Center h="100vh" bg="gray.0">
      <Paper withBorder shadow="sm" p="xl" w={400} component="main">
        <form onSubmit={form.onSubmit((values) => login.mutate(values))} noValidate>
          <Stack>
            <div>
              <Title order={1} size="h2">
                Sign in
              </Title>
              <Text c="dimmed" size="sm">
                Tandem · {where}
              </Text>
            </div>
            {login.isError && (
              <Alert color="red" role="alert" title="Not signed in">
                {messageOf(login.error)}
              </Alert>
            )}
            <TextInput label="E-mail" type="email" autoComplete="username" required autoFocus {...form.getInputProps("email")} />
            <PasswordInput label="Password" autoComplete="current-password" required {...form.getInputProps("password")} />
            <Button type="submit" loading={login.isPending}>
              Sign in
            </Button>
          </Stack>
        </form>
      </Paper>
    </Center>
  );
}

/** Ends the session; the panel falls back to the sign-in form. */
export function useSignOut() {
  const client = useQueryClient();
  return useMutation({
    mutationFn: () => unwrap(api.POST("/api/v1/auth/logout")),
    onSettled: () => {
      setCsrfToken(null);
      client.clear();
      client.setQueryData(ME_KEY, null);
    },
  });
}
