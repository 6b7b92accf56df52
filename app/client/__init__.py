"""The command line's side of the API: a GraphQL client that talks to a Slipway server.

Nothing here imports the server's code (``app.*`` outside ``app.client``): the CLI's remote
commands reach Slipway only over HTTP and WebSocket, as any other client would.
"""
