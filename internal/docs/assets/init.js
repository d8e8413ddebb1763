// Starts Swagger UI on the documentation page of Breakwater's portal. It is
// a file of its own because the page's Content-Security-Policy allows no
// inline script. The spec is this consumer's filtered openapi.json, next to
// the page; the validator badge (a call to a third party) is turned off.
"use strict";
window.addEventListener("DOMContentLoaded", function () {
  window.ui = SwaggerUIBundle({
    url: new URL("openapi.json", document.baseURI).href,
    dom_id: "#swagger-ui",
    validatorUrl: null,
    deepLinking: false,
    presets: [SwaggerUIBundle.presets.apis],
    layout: "BaseLayout"
  });
});
