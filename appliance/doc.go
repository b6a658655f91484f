// Package appliance wires flowshield's components into the running daemon:
// the collector, decoders, detector, ban manager, router clients, store,
// notifications, telemetry and the HTTP API, in the order the data path
// runs (router -> collector -> decoders -> detect -> mitigation ->
// routeros, with storage under mitigation). It holds no logic of its own
// beyond translating between components: the HTTP API's handlers convert
// domain values to the api package's shapes, and `flowshield check`'s
// router checks (CheckRouters) share the router client set-up with the
// daemon.
package appliance
