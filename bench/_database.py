"""The benchmarks' own PostgreSQL databases (created when missing, never the development one),
and counting the queries a timed step sends."""

from urllib.parse import urlsplit, urlunsplit


def ensure_database(url: str) -> None:
    """Create the benchmark database when it does not exist yet."""
    import psycopg
    from psycopg import sql

    parts = urlsplit(url)
    name = parts.path.lstrip("/")
    admin_url = urlunsplit(parts._replace(path="/postgres"))
    with psycopg.connect(admin_url, autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone()
        if not exists:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
            print(f"database {name} created")


class QueryCounter:
    """``connection.execute_wrapper(counter)``: counts the statements (COPY is not one)."""

    def __init__(self):
        self.count = 0

    def __call__(self, execute, sql, params, many, context):
        self.count += 1
        return execute(sql, params, many, context)
