"""Python client of Teatree, the near-real-time data pipeline server.

    from teatree_client import Client

    with Client.connect(data_dir="teatree-data") as client:
        client.submit_and_wait({"model": "sales", "op": "append", "table": "orders",
                                "rows": [[1, 9.5, "eu"]]}).check()
        print(client.query("sales", "SELECT * FROM orders").table)

Requests go through NATS JetStream (nats-py), reads over Arrow Flight (pyarrow.flight).
Every call is synchronous; failures raise TeatreeError with the server's message.
"""

from .client import Client, Watch
from .errors import TeatreeError
from .notes import Outcome
from .reads import QueryResult

__all__ = ["Client", "Outcome", "QueryResult", "TeatreeError", "Watch"]
