package web

import "github.com/flowshield/flowshield/telemetry/promtext"

// help documents the server's series (promtext fills the HELP lines the
// metrics library writes empty).
var help = map[string]string{
	"flowshield_http_requests_total": "HTTP requests answered, by registered route pattern and status code.",
	"flowshield_http_panics_total":   "HTTP handlers that panicked (answered 500 and logged).",
	"flowshield_http_refused_total":  "HTTP requests refused by the access rules (403 or 401), by reason.",
}

func init() { promtext.Describe(help) }
