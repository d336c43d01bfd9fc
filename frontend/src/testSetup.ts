import { configure } from "@testing-library/react";

// findBy*/waitFor give up after 1 s by default: too short on a loaded 2-core CI machine,
// where rendering a page with its queries can take longer. A real failure still fails.
configure({ asyncUtilTimeout: 5000 });

// What Mantine asks of the browser that jsdom lacks; stand-ins that do nothing, for every test.
globalThis.ResizeObserver ??= class {
  observe() {}
  unobserve() {}
  disconnect() {}
} as unknown as typeof ResizeObserver;
window.matchMedia ??= ((query: string) => ({
  matches: false, media: query, onchange: null, addEventListener: () => {}, removeEventListener: () => {},
  addListener: () => {}, removeListener: () => {}, dispatchEvent: () => false,
})) as typeof window.matchMedia;
// jsdom has no FontFaceSet; autosizing textareas listen to it.
if (!("fonts" in document)) {
  Object.defineProperty(document, "fonts", { value: { addEventListener() {}, removeEventListener() {} } });
}
