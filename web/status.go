package web

import "github.com/flowshield/flowshield/api"

// normalize makes the status JSON stable: empty lists and maps instead of
// null, times in UTC.
func normalize(s api.Status) api.Status {
	s.StartedAt = s.StartedAt.UTC()
	if s.Exporters == nil {
		s.Exporters = []api.Exporter{}
	} else {
		s.Exporters = append([]api.Exporter(nil), s.Exporters...)
	}
	for i := range s.Exporters {
		e := &s.Exporters[i]
		e.LastSeen = e.LastSeen.UTC()
		if e.DecodeErrors == nil {
			e.DecodeErrors = map[string]uint64{}
		}
	}
	if s.Routers == nil {
		s.Routers = []api.Router{}
	} else {
		s.Routers = append([]api.Router(nil), s.Routers...)
	}
	for i := range s.Routers {
		if !s.Routers[i].LastErrorAt.IsZero() {
			s.Routers[i].LastErrorAt = s.Routers[i].LastErrorAt.UTC()
		}
	}
	return s
}
