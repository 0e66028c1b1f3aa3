// Training Loop Lab: serve the ipywidgets runtime from this folder instead of a CDN.
// Loaded after require.js and before embed-amd.js. The module name below is mapped to this
// folder so that the Font Awesome files bundled with html-manager resolve here too.
(function () {
  var here = new URL(".", document.currentScript.src).href;
  window.require.config({
    baseUrl: here,
    paths: {
      "@jupyter-widgets/html-manager": here + "html-manager",
      "@jupyter-widgets/html-manager/dist/libembed-amd": here + "libembed-amd",
    },
  });
})();
