package netflow

// Template snapshots: what the store keeps across restarts.

import (
	"cmp"
	"encoding/binary"
	"maps"
	"slices"

	"github.com/flowshield/flowshield/flow"
)

// SnapshotTemplates returns the templates of the scopes heard from within
// IdleTimeout, with their scope's sampling state, sorted, for the store to
// persist. Its size is bounded by the template state's.
func (d *Decoder) SnapshotTemplates() []SavedTemplate {
	var out []SavedTemplate
	d.eachScope(func(k scopeKey, s *scope) {
		if d.idle(s) {
			return
		}
		samplers := maps.Clone(*s.samplers.Load())
		if len(samplers) == 0 {
			samplers = nil
		}
		for id, t := range *s.templates.Load() {
			out = append(out, SavedTemplate{
				Exporter: k.addr, ObservationDomain: k.domain, Version: k.version,
				TemplateID: id, Options: t.options, ScopeFields: t.scopeFields,
				Fields: append([]TemplateField(nil), t.fields...), Received: t.received,
				SamplingRate: s.samplingRate.Load(), Samplers: samplers, SysInitMs: s.sysInitMs.Load(),
				ActiveTimeoutSec: s.activeTimeout.Load(), InactiveTimeoutSec: s.inactiveTimeout.Load(),
			})
		}
	})
	slices.SortFunc(out, func(a, b SavedTemplate) int {
		return cmp.Or(scopeOrder(a.Exporter, a.Version, a.ObservationDomain, b.Exporter, b.Version, b.ObservationDomain),
			cmp.Compare(a.TemplateID, b.TemplateID))
	})
	return out
}

// RestoreTemplates installs saved templates (bounds and validity checked as
// for received ones; invalid entries are skipped). Templates received since
// start are not overwritten by older saved ones. A restored scope counts as
// heard when the first datagram arrives (or now, if some already have),
// and as carrying no flows until its exporter sends some: it is the first
// to go when room is needed, and expires if its exporter stays silent.
func (d *Decoder) RestoreTemplates(saved []SavedTemplate) {
	for _, st := range saved {
		if (st.Version != 9 && st.Version != 10) || st.TemplateID < 256 || !st.Exporter.IsValid() ||
			len(st.Fields) > d.cfg.MaxFieldsPerTemplate || int(st.ScopeFields) > len(st.Fields) {
			continue
		}
		k := scopeKey{addr: st.Exporter, domain: st.ObservationDomain, version: st.Version}
		sc := d.scopeFor(k, d.clock.Load())
		if sc == nil {
			continue
		}
		if cur := (*sc.templates.Load())[st.TemplateID]; cur != nil && cur.received >= st.Received {
			continue
		}
		raw := make([]byte, 0, len(st.Fields)*8)
		fields := make([]TemplateField, len(st.Fields))
		for i, f := range st.Fields {
			if st.Version == 9 {
				f.Enterprise = 0
			}
			f.Type &^= 0x8000
			fields[i] = f
			typ := f.Type
			if f.Enterprise != 0 {
				typ |= 0x8000
			}
			raw = binary.BigEndian.AppendUint16(raw, typ)
			raw = binary.BigEndian.AppendUint16(raw, f.Length)
			if f.Enterprise != 0 {
				raw = binary.BigEndian.AppendUint32(raw, f.Enterprise)
			}
		}
		d.install(sc, st.Version, st.TemplateID, st.Options, int(st.ScopeFields), fields, raw, st.Received)
		if st.SamplingRate != 0 && st.SamplingRate <= flow.MaxSamplingRate && sc.samplingRate.Load() == 0 {
			sc.samplingRate.Store(st.SamplingRate)
		}
		if st.SysInitMs != 0 && sc.sysInitMs.Load() == 0 {
			sc.sysInitMs.Store(st.SysInitMs)
		}
		if v, ok := timeoutSec(uint64(st.ActiveTimeoutSec)); ok && sc.activeTimeout.Load() == 0 {
			sc.activeTimeout.Store(v)
		}
		if v, ok := timeoutSec(uint64(st.InactiveTimeoutSec)); ok && sc.inactiveTimeout.Load() == 0 {
			sc.inactiveTimeout.Store(v)
		}
		for id, r := range st.Samplers {
			if r == 0 || r > flow.MaxSamplingRate {
				continue
			}
			if _, ok := (*sc.samplers.Load())[id]; !ok {
				sc.setSampler(id, r, d.cfg.MaxSamplersPerExporter)
			}
		}
	}
}
