package chain

import (
	"bytes"
	"encoding/base64"
	"net/http/httputil"

	"github.com/tollgate/tollgate/gateway/event"
)

// Publisher takes the events steps fire; a full queue drops an event
// rather than hold the request (event.Bus is one).
type Publisher interface {
	Publish(e event.Event) bool
}

// KeyEvent is an event about the request's key, with Tyk's
// EventKeyFailureMeta: message, path, client address, the key and the
// request in wire format (base64).
func KeyEvent(c *Call, name event.Name, msg string) event.Event {
	dump, _ := httputil.DumpRequest(c.R, false)
	return event.Event{
		Type:      name,
		APIID:     c.API.APIID,
		TimeStamp: c.Now,
		Meta: event.KeyFailureMeta{
			Message:            msg,
			Path:               c.R.URL.Path,
			Origin:             c.ClientIP,
			Key:                c.Key,
			OriginatingRequest: base64.StdEncoding.EncodeToString(bytes.TrimSpace(dump)),
		},
	}
}
