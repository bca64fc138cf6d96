# The lake's query side: a Glue database with one external Parquet table per lake table
# (meterflow/lake/domain/catalog.py LAKE_TABLES) and the Athena workgroup the API queries them in.
#
# Partitions are found by partition projection (table parameters computed below from each partition
# key's projection settings), so there are no crawlers and no partition maintenance: a partition
# exists as soon as its object is written.

locals {
  # "readings/parquet/reading_type=${reading_type}/year=${year}/...": catalog.py location_template.
  location_templates = {
    for name, table in var.tables :
    name => join("/", concat([table.prefix], [for key in table.partition_keys : "${key.name}=$${${key.name}}"]))
  }

  # Only partitioned tables get projection parameters (filters instead of a conditional, whose two
  # object types would not unify).
  projection_parameters = {
    for name, table in var.tables :
    name => merge(
      {
        for parameter, value in {
          "projection.enabled"        = "true"
          "storage.location.template" = "s3://${var.bucket_name}/${local.location_templates[name]}"
        } : parameter => value if length(table.partition_keys) > 0
      },
      { for key in table.partition_keys : "projection.${key.name}.type" => key.projection_type },
      { for key in table.partition_keys : "projection.${key.name}.values" => join(",", key.values) if key.values != null },
      { for key in table.partition_keys : "projection.${key.name}.range" => join(",", key.range) if key.range != null },
      { for key in table.partition_keys : "projection.${key.name}.digits" => tostring(key.digits) if key.digits != null },
      { for key in table.partition_keys : "projection.${key.name}.format" => key.format if key.format != null },
    )
  }
}

resource "aws_glue_catalog_database" "this" {
  name        = var.database_name
  description = var.database_description
}

resource "aws_glue_catalog_table" "this" {
  for_each = var.tables

  name          = each.key
  database_name = aws_glue_catalog_database.this.name
  description   = "Meterflow lake table ${each.key} (meterflow/lake/domain/catalog.py)."
  table_type    = "EXTERNAL_TABLE"

  parameters = merge(
    {
      EXTERNAL              = "TRUE"
      classification        = "parquet"
      "parquet.compression" = upper(var.parquet_compression)
    },
    local.projection_parameters[each.key],
  )

  dynamic "partition_keys" {
    for_each = each.value.partition_keys

    content {
      name = partition_keys.value.name
      type = partition_keys.value.type
    }
  }

  storage_descriptor {
    location      = "s3://${var.bucket_name}/${each.value.prefix}/"
    input_format  = "org.apache.hadoop.hive.ql.io.parquet.MapredParquetInputFormat"
    output_format = "org.apache.hadoop.hive.ql.io.parquet.MapredParquetOutputFormat"

    ser_de_info {
      name                  = "parquet"
      serialization_library = "org.apache.hadoop.hive.ql.io.parquet.serde.ParquetHiveSerDe"

      parameters = {
        "serialization.format" = "1"
      }
    }

    dynamic "columns" {
      for_each = each.value.columns

      content {
        name = columns.value.name
        type = columns.value.type
      }
    }
  }
}

resource "aws_athena_workgroup" "this" {
  name          = var.workgroup_name
  description   = "Meterflow lake queries (Glue database ${var.database_name})."
  state         = "ENABLED"
  force_destroy = var.force_destroy

  configuration {
    # Clients cannot override the result location, its encryption or the scan limit.
    enforce_workgroup_configuration    = true
    publish_cloudwatch_metrics_enabled = true
    bytes_scanned_cutoff_per_query     = var.bytes_scanned_cutoff_per_query

    engine_version {
      selected_engine_version = var.engine_version
    }

    result_configuration {
      output_location       = "s3://${var.results_bucket_name}/${var.results_prefix}"
      expected_bucket_owner = var.account_id

      encryption_configuration {
        encryption_option = "SSE_KMS"
        kms_key_arn       = var.kms_key_arn
      }
    }
  }

  tags = var.tags
}
