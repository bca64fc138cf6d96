"""The lake's query engine on one machine: DuckDB over pyarrow datasets of the integrated bucket.

Each table of :mod:`meterflow.lake.domain.catalog` becomes a DuckDB view of the same name over a
pyarrow dataset (hive partitioning, the catalog's column types), so the named queries read the
same tables here as in Athena. DuckDB pushes projections and filters into the dataset scan, so a
predicate on the partition columns skips whole directories.

The filesystem decides where the bucket lives: :func:`s3_filesystem_from_boto3` reaches the S3
endpoint a boto3 client is configured for (moto, LocalStack or AWS alike); tests pass a
``pyarrow.fs.LocalFileSystem`` over a directory instead.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterable
from typing import Any
from urllib.parse import urlsplit

import duckdb
import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.fs as pafs

from meterflow.lake.domain.catalog import LAKE_TABLES, LakeTable
from meterflow.lake.domain.queries import QueryFailed, QueryResult, json_safe

_ARROW_TYPES: dict[str, pa.DataType] = {
    "string": pa.string(),
    "double": pa.float64(),
    "bigint": pa.int64(),
    "int": pa.int32(),
    "timestamp": pa.timestamp("us"),
    "date": pa.date32(),
}


def arrow_type(glue_type: str) -> pa.DataType:
    try:
        return _ARROW_TYPES[glue_type]
    except KeyError:
        raise ValueError(f"no Arrow type for Glue type {glue_type!r}") from None


def partition_schema(table: LakeTable) -> pa.Schema:
    return pa.schema([pa.field(p.name, arrow_type(p.glue_type)) for p in table.partitions])


def table_schema(table: LakeTable) -> pa.Schema:
    """The table's columns, then its partition columns: the column order of the Glue table."""
    columns = [pa.field(c.name, arrow_type(c.glue_type)) for c in table.columns]
    return pa.schema(columns + list(partition_schema(table)))


class DuckDbLakeEngine:
    """Runs SQL over the lake in an in-memory DuckDB; every table of ``tables`` is a view.

    Files are discovered again before each :meth:`run` (for the tables the SQL names), because
    workers keep adding partitions; :meth:`refresh` does it for every table, before ad-hoc SQL on
    :attr:`connection`. A table whose prefix holds no objects yet is an empty view with the
    table's columns; a bucket that does not exist is an error, not an empty lake.

    :meth:`run` and :meth:`refresh` are serialised, so one engine may serve several threads; ad-hoc
    SQL on :attr:`connection` is the caller's to serialise.
    """

    name = "duckdb"

    def __init__(
        self, filesystem: pafs.FileSystem, bucket: str, tables: Iterable[LakeTable] = LAKE_TABLES
    ) -> None:
        self._filesystem = filesystem
        self.bucket = bucket.rstrip("/")
        self.tables: tuple[LakeTable, ...] = tuple(tables)
        if filesystem.get_file_info(self.bucket).type != pafs.FileType.Directory:
            raise FileNotFoundError(f"no bucket {self.bucket!r} on the {filesystem.type_name} filesystem")
        self._connection = duckdb.connect(":memory:")
        self._lock = threading.RLock()
        self.refresh()

    @property
    def connection(self) -> duckdb.DuckDBPyConnection:
        """The DuckDB connection holding the views, for ad-hoc SQL (call :meth:`refresh` first)."""
        return self._connection

    def refresh(self, tables: Iterable[LakeTable] | None = None) -> None:
        """Discover the files of ``tables`` (default: all) again and re-register their views."""
        with self._lock:
            for table in self.tables if tables is None else tables:
                self._connection.register(table.name, self._dataset(table))

    def run(self, sql: str) -> QueryResult:
        with self._lock:
            try:
                self.refresh(table for table in self.tables if _mentions(sql, table.name))
            except (pa.ArrowException, duckdb.Error) as exc:
                raise QueryFailed(f"DuckDB could not list the lake's files: {exc}") from exc
            try:
                cursor = self._connection.execute(sql)
                columns = [str(column[0]) for column in cursor.description or ()]
                rows = cursor.fetchall()
            except duckdb.Error as exc:
                raise QueryFailed(f"DuckDB could not run the query: {exc}") from exc
        return QueryResult(columns, [[json_safe(value) for value in row] for row in rows])

    def close(self) -> None:
        self._connection.close()

    def _dataset(self, table: LakeTable) -> ds.Dataset | pa.Table:
        schema = table_schema(table)
        root = f"{self.bucket}/{table.prefix}"
        if self._filesystem.get_file_info(root).type == pafs.FileType.NotFound:
            return schema.empty_table()  # nothing written yet: the view exists and is empty
        return ds.dataset(
            root,
            filesystem=self._filesystem,
            format="parquet",
            schema=schema,
            partitioning=ds.partitioning(partition_schema(table), flavor="hive")
            if table.partitions
            else None,
        )


def _mentions(sql: str, name: str) -> bool:
    return re.search(rf"\b{re.escape(name)}\b", sql, flags=re.IGNORECASE) is not None


def s3_filesystem_from_boto3(s3_client: Any, session: Any | None = None) -> pafs.S3FileSystem:
    """An Arrow S3 filesystem aimed where ``s3_client`` is aimed, with the same credentials.

    The endpoint (scheme and host), region and credentials all come from boto3, which honours
    ``AWS_ENDPOINT_URL`` and the usual credential chain, so the one code path reaches moto,
    LocalStack or AWS. Credentials come from ``session`` (a ``boto3.session.Session``) when given,
    else from the client itself. They are frozen when the filesystem is built: a long-lived
    process on expiring (role) credentials must build a new filesystem before they expire.
    """
    endpoint = urlsplit(str(s3_client.meta.endpoint_url))
    credentials = session.get_credentials() if session is not None else s3_client._request_signer._credentials
    options: dict[str, Any] = {
        "region": s3_client.meta.region_name,
        "scheme": endpoint.scheme or "https",
        "endpoint_override": endpoint.netloc,
    }
    if credentials is not None:
        frozen = credentials.get_frozen_credentials()
        options.update(access_key=frozen.access_key, secret_key=frozen.secret_key, session_token=frozen.token)
    return pafs.S3FileSystem(**options)
