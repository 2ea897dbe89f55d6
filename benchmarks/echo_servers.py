"""Reference servers for ``load.py``: the cheapest possible handler behind each protocol.

    python benchmarks/echo_servers.py rest --port 8001     # FastAPI: POST /echo {"text"}
    python benchmarks/echo_servers.py gradio --port 8002   # Gradio: /echo event

Each reverses the text it gets, so a load test against it measures the protocol, the
server and the client, not a model. ``load.py`` divides the app's figures by these.
"""

from __future__ import annotations

import argparse


def rest(port: int) -> None:
    import uvicorn
    from fastapi import Body, FastAPI

    app = FastAPI()

    @app.post("/echo")
    def echo(text: str = Body(embed=True)) -> dict[str, str]:
        return {"text": text[::-1]}

    @app.get("/health")
    def health() -> dict[str, str]:
        return {"status": "ready"}

    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning")


def gradio(port: int, workers: int) -> None:
    import gradio as gr

    with gr.Blocks() as demo:
        box = gr.Textbox()
        out = gr.Textbox()
        box.submit(lambda t: t[::-1], box, out, api_name="echo", concurrency_limit=workers)
    demo.queue(max_size=1000)
    demo.launch(server_name="127.0.0.1", server_port=port, quiet=True)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("kind", choices=["rest", "gradio"])
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--workers", type=int, default=16, help="gradio: handlers at once")
    args = p.parse_args()
    if args.kind == "rest":
        rest(args.port)
    else:
        gradio(args.port, args.workers)


if __name__ == "__main__":
    main()
