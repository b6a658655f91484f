package notify

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"strings"

	"github.com/flowshield/flowshield/routeros"
)

// Slack attachment colours: Slack's named colours for the three the
// operators know from FastNetMon's script, grey for the rest.
const (
	ColorBan     = "danger"  // red
	ColorDetails = "warning" // yellow
	ColorUnban   = "good"    // green
	ColorOther   = "#808080"
)

// SlackMessage is Slack's incoming-webhook body with one attachment.
type SlackMessage struct {
	Attachments []SlackAttachment `json:"attachments"`
}

// SlackAttachment is a Slack message attachment (the legacy format that
// every incoming webhook and Slack-compatible receiver understands).
type SlackAttachment struct {
	Fallback string       `json:"fallback"`
	Color    string       `json:"color"`
	Title    string       `json:"title"`
	Text     string       `json:"text"`
	Fields   []SlackField `json:"fields"`
	MrkdwnIn []string     `json:"mrkdwn_in,omitempty"`
	Footer   string       `json:"footer,omitempty"`
	TS       int64        `json:"ts"`
}

// SlackField is one short key/value of an attachment.
type SlackField struct {
	Title string `json:"title"`
	Value string `json:"value"`
	Short bool   `json:"short"`
}

// slackTextLimit keeps the details (the flow sample can be long) well under
// Slack's message size limit.
const slackTextLimit = 3000

// SlackColor is the attachment colour of an event kind.
func SlackColor(k Kind) string {
	switch k {
	case KindBan:
		return ColorBan
	case KindAttackDetails:
		return ColorDetails
	case KindUnban:
		return ColorUnban
	}
	return ColorOther
}

// Slack builds the Slack message of an event.
func Slack(e Event) SlackMessage {
	target := e.Target()
	if target == "" {
		target = "group attack"
	}
	title := fmt.Sprintf("flowshield: %s %s", strings.ReplaceAll(string(e.Kind), "_", " "), target)
	if e.Type != "" {
		title += " (" + e.Type + ", " + dirWord(e.Direction) + ")"
	}
	var fields []SlackField
	add := func(title, value string) {
		if value != "" {
			fields = append(fields, SlackField{Title: title, Value: value, Short: true})
		}
	}
	add("IP", target)
	add("Direction", dirWord(e.Direction))
	add("Attack type", e.Type)
	add("Protocol", e.Protocol)
	if e.PPS > 0 || e.BPS > 0 {
		add("Power", fmt.Sprintf("%.0f pps, %.1f Mbps", e.PPS, e.BPS/1e6))
	}
	if e.PeakPPS > 0 || e.PeakBPS > 0 {
		add("Peak", fmt.Sprintf("%.0f pps, %.1f Mbps", e.PeakPPS, e.PeakBPS/1e6))
	}
	if len(e.Actions) > 0 {
		add("Actions", routeros.JoinActions(e.Actions, ", "))
	}
	add("Reason", e.Reason)
	add("Attack ID", e.AttackID)
	if fields == nil {
		fields = []SlackField{}
	}
	text := e.Details
	if len(text) > slackTextLimit {
		cut := slackTextLimit
		for cut > 0 && text[cut]&0xC0 == 0x80 { // not inside a UTF-8 sequence
			cut--
		}
		text = text[:cut] + "\n… (truncated)"
	}
	a := SlackAttachment{
		Fallback: title, Color: SlackColor(e.Kind), Title: title, Fields: fields,
		Footer: "flowshield", TS: e.Time.Unix(),
	}
	if text != "" {
		// A code block keeps the details' columns; Slack escapes nothing in
		// it except the three characters below.
		a.Text = "```\n" + slackEscape(text) + "\n```"
		a.MrkdwnIn = []string{"text"}
	}
	return SlackMessage{Attachments: []SlackAttachment{a}}
}

// slackEscape escapes what Slack's message formatting reserves.
func slackEscape(s string) string {
	return strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;").Replace(s)
}

func slackBody(e Event) ([]byte, error) { return json.Marshal(Slack(e)) }

// redact hides a URL's path, query and user info: webhook URLs carry their
// secret there (hooks.slack.com/services/T…/B…/secret).
func redact(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		return "(webhook URL)"
	}
	return u.Scheme + "://" + u.Host + "/…"
}

// unwrapURL drops *url.Error's copy of the URL (with its secret) and keeps
// the cause.
func unwrapURL(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		if ue.Timeout() {
			return fmt.Errorf("timeout: %w", ue.Err)
		}
		return ue.Err
	}
	return err
}
