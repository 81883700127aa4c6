"""FastAPI behind the phantom-token middleware.

    export PHANTOM_EDGE_CLIENT_SECRET=gateway-secret
    export PHANTOM_EDGE_SIGNING_KEY="$(cat tests/vectors/keys/edge-ed25519.pem)"
    export PHANTOM_EDGE_ADMIN_TOKEN=admin-secret-0123456789
    (cd tests/e2e/authorization-server && node server.mjs) &      # READY http://127.0.0.1:3000
    uvicorn app:app --app-dir host-examples/python-asgi --port 8000
"""

import pathlib

from fastapi import FastAPI, Request

from phantom_edge.asgi import PhantomTokenMiddleware

CONFIG = pathlib.Path(__file__).with_name("phantom-edge.toml")

app = FastAPI(title="orders")
app.add_middleware(PhantomTokenMiddleware, config=CONFIG)


@app.get("/orders/{order_id}")
async def get_order(order_id: int, request: Request) -> dict:
    claims = request.state.phantom_edge  # the token's claims, decided by the edge core
    # request.headers["authorization"] is now "Bearer <JWT minted by the edge>", never the opaque token
    return {"order": order_id, "client_id": claims.get("client_id"), "scopes": claims["scopes"]}
