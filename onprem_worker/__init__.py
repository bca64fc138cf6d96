"""Meterflow's on-premises bridge worker: Step Functions jobs over MQTT, run on site."""
