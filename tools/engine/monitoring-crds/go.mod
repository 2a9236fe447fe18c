// Pins the Prometheus operator release whose CustomResourceDefinitions (ServiceMonitor,
// PrometheusRule, ...) the tests validate rendered objects against and the e2e suite installs.
// Nothing is compiled: build.py takes the CRD files from this module in the module cache.
module platform.local/tools/engine/monitoring-crds

go 1.26.0

require github.com/prometheus-operator/prometheus-operator v0.85.0
