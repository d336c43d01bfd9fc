import { configure } from "@testing-library/react";

// findBy*/waitFor give up after 1 s by default: too short on a loaded 2-core CI machine,
// where rendering a page with its queries can take longer. A real failure still fails.
configure({ asyncUtilTimeout: 5000 });
