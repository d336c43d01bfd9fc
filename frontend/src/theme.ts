/**
 * The panel's Mantine theme: system fonts, a focus ring on every focused control, and
 * colours that meet WCAG 2 AA contrast (4.5:1 for text) wherever Mantine's variants put them.
 *
 * Mantine's default palettes do not: white on green/orange/yellow "filled" shades, the
 * "light" badges' dark text on their pale background, and the "dimmed" grey all fall short
 * (checked by axe-core in the browser tests, tests/e2e/panel_setup.py). So the three darkest
 * shades of each colour the panel uses are darkened just enough, the filled shade is the 8th,
 * and dimmed text is one grey darker. Components keep naming colours ("red", "green.8",
 * c="dimmed"): contrast is decided here, never by hand-set colours elsewhere.
 */
import {
  DEFAULT_THEME,
  Modal,
  Notification,
  createTheme,
  darken,
  type CSSVariablesResolver,
  type MantineColorsTuple,
} from "@mantine/core";

/** How much each colour's shades 7-9 are darkened: the least that reaches 4.5:1 (white on
 * shade 8, shade 9 on shades 1-2, shade 8 on the page's light grey). */
const DARKEN: Record<string, number> = {
  indigo: 0.1,
  blue: 0.1,
  red: 0.15,
  teal: 0.15,
  green: 0.2,
  orange: 0.25,
  yellow: 0.35,
};

function accessible(name: string, amount: number): MantineColorsTuple {
  const shades = DEFAULT_THEME.colors[name]!;
  return shades.map((shade, index) => (index >= 7 ? darken(shade, amount) : shade)) as unknown as MantineColorsTuple;
}

export const theme = createTheme({
  primaryColor: "indigo",
  primaryShade: 8,
  colors: Object.fromEntries(Object.entries(DARKEN).map(([name, amount]) => [name, accessible(name, amount)])),
  // System fonts only: nothing is fetched from outside the appliance.
  fontFamily: "system-ui, -apple-system, 'Segoe UI', Roboto, 'Helvetica Neue', Arial, sans-serif",
  focusRing: "always",
  components: {
    // An icon-only button needs a name a screen reader can say.
    Modal: Modal.extend({ defaultProps: { closeButtonProps: { "aria-label": "Close" } } }),
    Notification: Notification.extend({
      defaultProps: { closeButtonProps: { "aria-label": "Dismiss notification" } },
      // Mantine greys a titled notification's text with gray.6 directly, not with "dimmed".
      styles: { description: { color: "var(--mantine-color-dimmed)" } },
    }),
  },
});

/** Dimmed text (descriptions, hints, secondary columns) one grey darker than Mantine's (8:1,
 * not 3.3:1), and fields' error messages and borders in red.8 (5.9:1), not red.6 (3.3:1). */
export const cssVariables: CSSVariablesResolver = () => ({
  variables: {},
  light: { "--mantine-color-dimmed": "var(--mantine-color-gray-7)", "--mantine-color-error": "var(--mantine-color-red-8)" },
  dark: {},
});
