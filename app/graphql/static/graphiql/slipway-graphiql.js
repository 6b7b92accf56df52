// Slipway's GraphiQL page: everything it loads comes from this server (/graphiql/...).
//
// The API key goes in the headers pane ({"x-api-key": "..."}); it is never put in the URL
// and not persisted. Queries and mutations go over HTTP with those headers; subscriptions
// over a WebSocket (graphql-transport-ws, the graphql-ws client bundled in GraphiQL) whose
// connection_init carries the same headers, since a browser cannot set headers on a
// WebSocket. A change of headers makes a new client, so a new key takes effect at once.
(function () {
  "use strict";

  var url = window.location.origin + window.location.pathname;
  var subscriptionUrl = url.replace(/^http/, "ws");
  var fetchers = new Map();

  function fetcherFor(headers) {
    var id = JSON.stringify(headers);
    if (!fetchers.has(id)) {
      fetchers.set(
        id,
        GraphiQL.createFetcher({
          url: url,
          subscriptionUrl: subscriptionUrl,
          wsConnectionParams: headers,
        })
      );
    }
    return fetchers.get(id);
  }

  function fetcher(params, options) {
    var headers = (options && options.headers) || {};
    return fetcherFor(headers)(params, options);
  }

  var EXAMPLE = [
    "# Slipway's API. Put your key in the Headers pane below:",
    '#   {"x-api-key": "slw_..."}',
    "# Subscriptions (deploymentLogs, deploymentStatus) run over a WebSocket.",
    "",
    "{",
    "  applications(first: 10) {",
    "    edges { node { id name status } }",
    "  }",
    "}",
    "",
  ].join("\n");

  var root = ReactDOM.createRoot(document.getElementById("graphiql"));
  root.render(
    React.createElement(GraphiQL, {
      fetcher: fetcher,
      defaultQuery: EXAMPLE,
      defaultHeaders: '{\n  "x-api-key": ""\n}',
      isHeadersEditorEnabled: true,
      shouldPersistHeaders: false,
      defaultEditorToolsVisibility: "headers",
      inputValueDeprecation: true,
    })
  );
})();
