"use strict";
// /docs: Swagger UI from the console's own static files (no CDN, no inline script).
window.addEventListener("DOMContentLoaded", () => {
  window.ui = window.SwaggerUIBundle({
    url: "/openapi.json",
    dom_id: "#swagger-ui",
    layout: "BaseLayout",
    deepLinking: true,
    showExtensions: true,
    validatorUrl: null, // the public validator is on the internet; the intranet has none
    presets: [window.SwaggerUIBundle.presets.apis],
  });
});
