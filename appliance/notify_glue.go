package appliance

import "github.com/flowshield/flowshield/detect"

// notifyDetect passes a detector decision to the notifications.
func (a *Appliance) notifyDetect(ev detect.Event) {}
