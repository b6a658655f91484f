package appliance

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/flowshield/flowshield/config"
	"github.com/flowshield/flowshield/detect"
	"github.com/flowshield/flowshield/routeros"
)

// Bounds of the router part of `flowshield check`, and of one router's.
const (
	checkTimeout     = 30 * time.Second
	checkDialTimeout = 5 * time.Second
	checkCallTimeout = 10 * time.Second
)

// CheckRouters is the router part of `flowshield check`: for each of
// cfg.RouterOSAddresses (in parallel), log in, read /system/resource and the
// API user's group policies, then the flow export (/ip/traffic-flow, its
// targets, the switch chips' L3 hardware offloading), and return one line
// per problem. The version and board of each router reached are logged.
//
// Problems (exit 1): unreachable, login refused, a policy the configured
// actions need is missing (read, write, api), the traffic-flow settings
// unreadable, traffic-flow disabled or without an enabled target (flowshield
// would see no flows from that router).
//
// Warnings (logged at WARN, exit unaffected, since flowshield still works):
// timers above routeros.FastFlowTimeout, with the detection latency they
// give (a short-flow flood is seen about the inactive timeout after it
// starts, a long-flow flood about the active timeout, the end confirmed up
// to active + inactive + the detector's hysteresis after the flood stops)
// and the command that shortens them; L3 hardware offloading on a switch
// chip (floods through offloaded paths are invisible); a NetFlow v1 target.
// Fast timers are logged at INFO with the latency they give.
//
// It is for a valid configuration; nil means all is well (and no router,
// nothing to check). The password never appears in what it returns or logs.
func CheckRouters(ctx context.Context, cfg config.Configuration, log *slog.Logger) []string {
	ctx, cancel := context.WithTimeout(ctx, checkTimeout)
	defer cancel()
	var actions []routeros.Action
	for _, a := range cfg.Actions {
		if a != routeros.ActionNone {
			actions = append(actions, a)
		}
	}
	results := make([][]string, len(cfg.RouterOSAddresses))
	var wg sync.WaitGroup
	for i, addr := range cfg.RouterOSAddresses {
		wg.Add(1)
		go func() {
			defer wg.Done()
			results[i] = checkRouter(ctx, cfg, addr, actions, log)
		}()
	}
	wg.Wait()
	var problems []string
	for _, r := range results {
		for _, p := range r {
			problems = append(problems, redactSecret(p, cfg.RouterOSPassword))
		}
	}
	return problems
}

// checkRouter checks one router.
func checkRouter(ctx context.Context, cfg config.Configuration, addr string, actions []routeros.Action, log *slog.Logger) []string {
	rcfg := routerConfiguration(cfg, addr)
	rcfg.DialTimeout, rcfg.CallTimeout = checkDialTimeout, checkCallTimeout
	rcfg.KeepAlive = 0
	// The client's own warnings would repeat the problem lines.
	r := routeros.New(rcfg, slog.New(slog.DiscardHandler))
	defer r.Stop()

	res, err := r.Resource(ctx)
	if err != nil {
		return []string{describeRouterError(addr, cfg.RouterOSUser, cfg.RouterOSTLS, err)}
	}
	log.Info("router reachable", "address", addr, "version", res["version"], "board", res["board-name"],
		"architecture", res["architecture-name"], "user", cfg.RouterOSUser, "tls", cfg.RouterOSTLS)

	have, err := r.Permissions(ctx)
	if err != nil {
		return []string{fmt.Sprintf("router %s: cannot read the policies of user %q: %v", addr, cfg.RouterOSUser, err)}
	}
	need := routeros.RequiredPolicies(actions)
	var missing []string
	for _, p := range need {
		if !slices.Contains(have, p) {
			missing = append(missing, p)
		}
	}
	var problems []string
	if len(missing) > 0 {
		problems = append(problems, fmt.Sprintf("router %s: the group of user %q lacks the %s %s; %s needs %s",
			addr, cfg.RouterOSUser, strings.Join(missing, ", "), plural(len(missing), "policy", "policies"),
			actionsText(actions), strings.Join(need, ", ")))
	} else {
		log.Info("router access is sufficient", "address", addr, "policies", strings.Join(need, ","), "for", actionsText(actions))
	}
	if slices.Contains(have, "read") {
		problems = append(problems, checkFlowExport(ctx, r, addr, res["version"], log)...)
	}
	return problems
}

// checkFlowExport reads the router's traffic-flow settings and switch chips
// and reports what they mean for detection (routeros.AdviseTrafficFlow):
// problems returned, warnings and the latency logged.
func checkFlowExport(ctx context.Context, r *routeros.Router, addr, version string, log *slog.Logger) []string {
	tf, err := r.TrafficFlow(ctx)
	if err != nil {
		return []string{fmt.Sprintf("router %s: cannot read the traffic-flow settings: %v", addr, err)}
	}
	offloaded, err := r.L3HWOffload(ctx)
	if err != nil {
		log.Warn(fmt.Sprintf("router %s: cannot read the switch chips' L3 hardware offloading: %v", addr, err))
	}
	adv := routeros.AdviseTrafficFlow(tf, offloaded, version, detect.DefaultConfiguration().EndAfter)
	targets := make([]string, 0, len(tf.Targets))
	for _, t := range tf.Targets {
		if !t.Disabled {
			targets = append(targets, t.Address+" "+t.Version)
		}
	}
	if tf.Exporting() {
		log.Info("traffic-flow export", "address", addr, "targets", strings.Join(targets, ","),
			"active_flow_timeout", routeros.FormatDuration(tf.ActiveTimeout),
			"inactive_flow_timeout", routeros.FormatDuration(tf.InactiveTimeout), "detection", adv.Summary)
	}
	for _, w := range adv.Warnings {
		log.Warn("router " + addr + ": " + w)
	}
	problems := make([]string, len(adv.Problems))
	for i, p := range adv.Problems {
		problems[i] = "router " + addr + ": " + p
	}
	return problems
}

// describeRouterError turns the first call's error into one plain line:
// cannot connect, login refused, login did not complete, or the router
// refusing the read.
func describeRouterError(addr, user string, useTLS bool, err error) string {
	var op *net.OpError
	var certErr *tls.CertificateVerificationError
	var unknownAuth x509.UnknownAuthorityError
	var hostErr x509.HostnameError
	var login *routeros.LoginError
	var mismatch *routeros.CertificateMismatchError
	switch {
	case errors.As(err, &mismatch):
		return fmt.Sprintf("router %s: cannot connect: the router's TLS certificate has fingerprint %s, not FLOWSHIELD_ROUTEROS_TLS_FINGERPRINT's %s: if its certificate was replaced, pin the new one; otherwise something else answers at this address", addr, mismatch.Got, mismatch.Want)
	case errors.As(err, &certErr), errors.As(err, &unknownAuth), errors.As(err, &hostErr):
		return fmt.Sprintf("router %s: cannot connect: the router's TLS certificate is not trusted (%v); install a certificate signed by a trusted CA (or give its CA in FLOWSHIELD_ROUTEROS_TLS_CA_FILE), pin it with FLOWSHIELD_ROUTEROS_TLS_FINGERPRINT, or set FLOWSHIELD_ROUTEROS_TLS_INSECURE=true", addr, err)
	case errors.As(err, &op) && op.Op == "dial":
		return fmt.Sprintf("router %s: cannot connect: %v", addr, op.Err)
	case errors.As(err, &login) && login.Refused:
		return fmt.Sprintf("router %s: login as %q failed: %s (check FLOWSHIELD_ROUTEROS_USER and FLOWSHIELD_ROUTEROS_PASSWORD)", addr, user, login.Message)
	case errors.As(err, &login):
		hint := ""
		if !useTLS {
			hint = " (is it the API port, 8728, and the API service enabled? with API-SSL set FLOWSHIELD_ROUTEROS_TLS=true)"
		}
		return fmt.Sprintf("router %s: connected but the login as %q did not complete: %v%s", addr, user, err, hint)
	case routeros.IsTrap(err):
		return fmt.Sprintf("router %s: logged in as %q but the router refused to read /system/resource: %v (the group needs the api and read policies)", addr, user, err)
	}
	return fmt.Sprintf("router %s: cannot connect: %v", addr, err)
}

func actionsText(actions []routeros.Action) string {
	if len(actions) == 0 {
		return "ACTION=none"
	}
	return "ACTION=" + routeros.JoinActions(actions, ",")
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}

// redactSecret hides the password should any message ever carry it (the
// routeros client never puts it in an error; this is a second guard).
// Passwords shorter than 4 characters are left alone: replacing them would
// garble ordinary words.
func redactSecret(s, secret string) string {
	if len(secret) < 4 {
		return s
	}
	return strings.ReplaceAll(s, secret, "[REDACTED]")
}
