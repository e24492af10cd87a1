"""``python -m crm_bridge.gateway_sim --port 8090 --callback-url URL --secret S``"""

from __future__ import annotations

import argparse

import uvicorn

from crm_bridge.gateway_sim.app import create_gateway_app


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m crm_bridge.gateway_sim",
                                     description="Payment gateway simulator (hosted page + signed callbacks).")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8090)
    parser.add_argument("--callback-url", required=True,
                        help="where to POST callbacks, e.g. http://127.0.0.1:8000/v1/topups/gateway-callback")
    parser.add_argument("--secret", required=True, help="the shared secret (FUELCARD_GATEWAY_SECRET)")
    parser.add_argument("--public-url", default="",
                        help="base URL payers use to reach this simulator (default: as requested)")
    args = parser.parse_args(argv)
    app = create_gateway_app(callback_url=args.callback_url, secret=args.secret, public_url=args.public_url)
    uvicorn.run(app, host=args.host, port=args.port, log_level="info")


if __name__ == "__main__":
    main()
