# The lake's Glue tables: meterflow/lake/domain/catalog.py LAKE_TABLES, column for column.
# modules/catalog turns each partition key's projection settings into Athena partition-projection
# table parameters; tests/deploy compares the applied tables with catalog.py.
#
# Partition keys: projection_type "enum" uses values, "integer" range and digits, "date" range and
# format; every attribute is passed, null where unused.

locals {
  lake_tables = {
    readings = {
      prefix = "readings/parquet"
      columns = [
        { name = "meter_id", type = "string" },
        { name = "reading_value", type = "double" },
        { name = "reading_date_time", type = "timestamp" },
        { name = "unit", type = "string" },
        { name = "obis_code", type = "string" },
        { name = "phase", type = "string" },
        { name = "reading_source", type = "string" },
      ]
      partition_keys = [
        {
          name            = "reading_type"
          type            = "string"
          projection_type = "enum"
          values          = ["load", "crrnt", "pf", "kva", "kw", "vltg", "kwh"]
          range           = null
          digits          = null
          format          = null
        },
        {
          name            = "year"
          type            = "int"
          projection_type = "integer"
          values          = null
          range           = ["2000", "2100"]
          digits          = 4
          format          = null
        },
        {
          name            = "month"
          type            = "int"
          projection_type = "integer"
          values          = null
          range           = ["1", "12"]
          digits          = 2
          format          = null
        },
        {
          name            = "day"
          type            = "int"
          projection_type = "integer"
          values          = null
          range           = ["1", "31"]
          digits          = 2
          format          = null
        },
        {
          name            = "hour"
          type            = "int"
          projection_type = "integer"
          values          = null
          range           = ["0", "23"]
          digits          = 2
          format          = null
        },
      ]
    }

    weather = {
      prefix = "weather"
      columns = [
        { name = "observation_time", type = "timestamp" },
        { name = "temperature_c", type = "double" },
        { name = "source", type = "string" },
      ]
      partition_keys = [
        {
          name            = "date"
          type            = "string"
          projection_type = "date"
          values          = null
          range           = ["2000-01-01", "NOW"]
          digits          = null
          format          = "yyyy-MM-dd"
        },
      ]
    }

    topology_meters = {
      prefix = "topology/meters"
      columns = [
        { name = "meter_id", type = "string" },
        { name = "service_transformer_id", type = "string" },
        { name = "distribution_transformer_id", type = "string" },
        { name = "substation_id", type = "string" },
        { name = "grid_id", type = "string" },
        { name = "latitude", type = "double" },
        { name = "longitude", type = "double" },
      ]
      partition_keys = []
    }

    topology_assets = {
      prefix = "topology/assets"
      columns = [
        { name = "asset_id", type = "string" },
        { name = "asset_type", type = "string" },
        { name = "parent_id", type = "string" },
        { name = "name", type = "string" },
        { name = "latitude", type = "double" },
        { name = "longitude", type = "double" },
      ]
      partition_keys = []
    }

    lcl_households = {
      prefix = "topology/lcl_households"
      columns = [
        { name = "meter_id", type = "string" },
        { name = "std_or_tou", type = "string" },
        { name = "acorn", type = "string" },
        { name = "acorn_grouped", type = "string" },
      ]
      partition_keys = []
    }
  }
}
