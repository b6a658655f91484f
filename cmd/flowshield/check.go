package main

import (
	"context"
	"log/slog"

	"github.com/flowshield/flowshield/appliance"
)

// checkRouterAccess is the router part of `flowshield check`: for each of
// cfg.RouterOSAddresses, log in, read /system/resource and the API user's
// group policies, and return one line per problem (unreachable, login
// refused, a policy the configured actions need is missing: read, write,
// api). It runs only when the configuration itself is valid and a router is
// configured; nil means all is well.
//
// TODO(lead): fill in with the routeros client (issue 4). Until then it
// checks nothing.
func checkRouterAccess(ctx context.Context, cfg appliance.Configuration, log *slog.Logger) []string {
	log.Warn("router access is not checked by this build", "routers", cfg.RouterOSAddresses)
	return nil
}
