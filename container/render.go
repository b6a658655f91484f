package container

// Rendering the setup script: the .rsc fragments under rsc/ filled with
// the prepared values, RouterOS string escaping and the payloads.

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/flowshield/flowshield/routeros"
)

// renderer fills the fragments in.
type renderer struct {
	// envs are what the envs-* payloads are repeated for.
	envs []Env
}

// renderScript fills rsc/setup.rsc in with d.
func renderScript(d scriptData) (string, error) {
	r := renderer{envs: d.Envs}
	v := values{
		"version":           d.Version,
		"script-file":       d.ScriptFile,
		"image-file":        d.ImageFile,
		"root-dir":          d.RootDir,
		"container-name":    d.Name,
		"container-prefix":  d.ContainerPrefix.String(),
		"container-ip":      d.ContainerIP,
		"container-host":    d.ContainerHost,
		"container-network": d.ContainerNetwork,
		"router-ip":         d.RouterIP.String(),
		"router-prefix":     d.RouterPrefix,
		"veth":              d.Veth,
		"api-user":          d.APIUser,
		"api-password":      d.APIPassword,
		"api-service":       d.APIService,
		"api-port":          strconv.Itoa(int(d.APIPort)),
		"group":             d.Group,
		"policy":            d.Policy,
		"dns-servers":       d.DNSServers,
		"netflow-port":      strconv.Itoa(int(d.NetflowPort)),
		"flow-version":      d.FlowVersion,
		"ram-high":          strconv.FormatUint(d.RAMHigh, 10),
		"env-list":          d.EnvList,
		"mount-list":        d.MountList,
		"admin-list":        AdminList,
		"exporters-list":    ExportersList,
		"http-port":         strconv.Itoa(int(d.HTTPPort)),
		"uplink-list":       routeros.UplinkList,
	}
	// The optional and repeated parts. Each starts with a newline (web-ui
	// with a space), so that it is nothing at all when absent.
	var notes, password, webUI, adminNotice string
	for _, n := range d.Notes {
		notes += "\n# " + n
	}
	v["notes"] = notes
	if d.PasswordGenerated {
		password = "\n# API password (generated, also in the container's envs): " + d.APIPassword
	}
	v["generated-password"] = password
	if d.HTTPPort != 0 {
		webUI = fmt.Sprintf(" Web UI: http://%s:%d/ (from the sources in %s)", d.ContainerIP, d.HTTPPort, AdminList)
		notice, err := r.fillFragment("admin-notice", v)
		if err != nil {
			return "", err
		}
		adminNotice = "\n" + notice
	}
	v["web-ui"] = webUI
	v["admin-notice"] = adminNotice
	var lists strings.Builder
	for _, l := range d.Lists {
		entries, err := r.repeat("address-list-entry", len(l.Entries), func(i int) values {
			return v.with("list-name", l.Name, "list-comment", l.Comment, "list-entry", l.Entries[i])
		})
		if err != nil {
			return "", err
		}
		// The find of the remove keeps the entries still wanted.
		var keep string
		for _, e := range l.Entries {
			keep += " and address!=" + quote(e)
		}
		list, err := r.fillFragment("address-list", v.with("list-name", l.Name, "list-why", l.Why,
			"list-comment", l.Comment, "list-keep", keep, "list-entries", entries))
		if err != nil {
			return "", err
		}
		lists.WriteString("\n" + list)
	}
	v["address-lists"] = lists.String()
	rules, err := r.repeat("drop-rule", len(d.DropRules), func(i int) values {
		rule := d.DropRules[i]
		return v.with("rule-menu", rule.Menu, "rule-why", rule.Why, "rule-match", rule.Match, "rule-comment", rule.Comment)
	})
	if err != nil {
		return "", err
	}
	v["drop-rules"] = rules
	members, err := r.repeat("uplink-member", len(d.Uplinks), func(i int) values {
		return v.with("uplink-interface", d.Uplinks[i])
	})
	if err != nil {
		return "", err
	}
	if v["uplinks"], err = r.fillFragment("uplinks", v.with("uplink-members", members)); err != nil {
		return "", err
	}
	v["rtbh"] = ""
	if d.Blackhole {
		examples, err := r.repeat("rtbh-rule", len(d.RTBHRules), func(i int) values {
			return v.with("rtbh-rule", d.RTBHRules[i])
		})
		if err != nil {
			return "", err
		}
		rtbh, err := r.fillFragment("rtbh", v.with("rtbh-rules", examples))
		if err != nil {
			return "", err
		}
		v["rtbh"] = "\n" + rtbh
	}
	return r.fillFragment("setup", v)
}

// repeat is rsc/<name>.rsc filled in n times, with the values of each
// item, each time after a newline.
func (r renderer) repeat(name string, n int, item func(i int) values) (string, error) {
	var b strings.Builder
	for i := range n {
		s, err := r.fillFragment(name, item(i))
		if err != nil {
			return "", err
		}
		b.WriteString("\n" + s)
	}
	return b.String(), nil
}

func (r renderer) fillFragment(name string, v values) (string, error) {
	text, err := fragment(name)
	if err != nil {
		return "", err
	}
	s, err := r.fill(text, v)
	if err != nil {
		return "", fmt.Errorf("filling rsc/%s.rsc in: %w", name, err)
	}
	return s, nil
}

// fill replaces the placeholders of text:
//
//	{{name}}          the value as it is
//	{{q name}}        the value as a RouterOS string literal
//	{{outer name}}    in a payload: the outer script's local $name
//	{{parse name}}    rsc/payload/<name>.rsc as [[:parse "..."]]
//	{{payload name}}  rsc/payload/<name>.rsc as a string literal
//
// An unknown placeholder is an error, so that a typo never reaches a router.
func (r renderer) fill(text string, v values) (string, error) {
	var b strings.Builder
	for {
		open := strings.Index(text, "{{")
		if open < 0 {
			b.WriteString(text)
			return b.String(), nil
		}
		n := strings.Index(text[open:], "}}")
		if n < 0 {
			return "", fmt.Errorf("%q: no closing }}", text[open:min(len(text), open+30)])
		}
		b.WriteString(text[:open])
		placeholder := text[open : open+n+2]
		text = text[open+n+2:]
		words := strings.Fields(placeholder[2 : len(placeholder)-2])
		var verb, name string
		switch len(words) {
		case 1:
			name = words[0]
		case 2:
			verb, name = words[0], words[1]
		default:
			return "", fmt.Errorf("placeholder %s: expected {{name}} or {{verb name}}", placeholder)
		}
		value, known := v[name]
		switch verb {
		case "":
			if !known {
				return "", fmt.Errorf("placeholder %s: no such value", placeholder)
			}
			b.WriteString(value)
		case "q":
			if !known {
				return "", fmt.Errorf("placeholder %s: no such value", placeholder)
			}
			b.WriteString(quote(value))
		case "outer":
			b.WriteString(sentinel + name + sentinel)
		case "parse", "payload":
			code, err := r.payload(name, v)
			if err != nil {
				return "", fmt.Errorf("placeholder %s: %w", placeholder, err)
			}
			if verb == "parse" {
				b.WriteString("[[:parse " + quotePayload(code) + "]]")
			} else {
				b.WriteString(quotePayload(code))
			}
		default:
			return "", fmt.Errorf("placeholder %s: unknown verb %s (expected q, outer, parse or payload)", placeholder, verb)
		}
	}
}

// payload is rsc/payload/<name>.rsc filled in. The envs-* payloads are
// one line per env: they are repeated for each of the container's envs.
func (r renderer) payload(name string, v values) (string, error) {
	text, err := fragment("payload/" + name)
	if err != nil {
		return "", err
	}
	if !strings.HasPrefix(name, "envs-") {
		s, err := r.fill(text, v)
		return strings.TrimRight(s, "\n"), err
	}
	lines := make([]string, 0, len(r.envs))
	for _, e := range r.envs {
		s, err := r.fill(text, v.with("env-key", e.Key, "env-value", e.Value))
		if err != nil {
			return "", err
		}
		lines = append(lines, s)
	}
	return strings.Join(lines, "\n"), nil
}

// escape writes s as the inside of a RouterOS double-quoted string.
func escape(s string) string {
	var b strings.Builder
	for _, r := range s {
		switch r {
		case '\\', '"', '$', '?':
			// ? too: pasted into a terminal it would open the help.
			b.WriteByte('\\')
			b.WriteRune(r)
		case '\n':
			b.WriteString(`\n`)
		case '\t':
			b.WriteString(`\t`)
		case '\r':
			b.WriteString(`\r`)
		default:
			if r < 0x20 || r == 0x7f {
				fmt.Fprintf(&b, `\%02X`, r)
				continue
			}
			b.WriteRune(r)
		}
	}
	return b.String()
}

// quote is s as a RouterOS string literal.
func quote(s string) string { return `"` + escape(s) + `"` }

// quotePayload quotes script code for [:parse], then turns the sentinels
// back into $name interpolations of the outer script.
func quotePayload(code string) string {
	q := quote(code)
	parts := strings.Split(q, sentinel)
	var b strings.Builder
	for i, part := range parts {
		if i%2 == 1 {
			b.WriteString("$" + part)
			continue
		}
		b.WriteString(part)
	}
	return b.String()
}
