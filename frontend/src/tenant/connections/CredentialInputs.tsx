import { PasswordInput, Select, TextInput } from "@mantine/core";
import type { GetInputPropsReturnType } from "@mantine/form";
import { APPS, CREDENTIAL_FIELDS, type App, type AuthMethod, type CredentialField } from "./apps";

/**
 * The auth method (a choice only where the app has several) and its credential inputs.
 * `inputProps` is the form's getInputProps for a credential field.
 */
export function CredentialInputs({
  app, method, onMethod, inputProps, autoFocus,
}: {
  app: App;
  method: AuthMethod;
  onMethod: (method: AuthMethod) => void;
  inputProps: (field: CredentialField) => GetInputPropsReturnType;
  autoFocus?: boolean;
}) {
  const methods = APPS[app].methods;
  return (
    <>
      {methods.length > 1 ? (
        <Select
          label="Authentication"
          data={methods}
          value={method}
          onChange={(value) => value && onMethod(value as AuthMethod)}
          allowDeselect={false}
        />
      ) : (
        <TextInput label="Authentication" value={methods[0].label} readOnly variant="filled" />
      )}
      {CREDENTIAL_FIELDS[method].map(({ field, label, secret, description }, index) => {
        const common = {
          label,
          description,
          required: true,
          autoComplete: "off",
          spellCheck: false,
          "data-autofocus": autoFocus && index === 0 ? true : undefined,
          ...inputProps(field),
        };
        return secret ? <PasswordInput key={`${method}-${field}`} {...common} /> : <TextInput key={`${method}-${field}`} {...common} />;
      })}
    </>
  );
}
