package chain

import (
	"bytes"
	"io"
	"net/http"
)

// Body reads the request body once, up to limit bytes, and puts it back for
// the upstream; later calls return what the first read. A body over limit
// is answered 413 and a body that cannot be read 400; ok is false then.
func (c *Call) Body(limit int64) (body []byte, ok bool) {
	if c.bodyRead {
		return c.body, true
	}
	c.bodyRead = true
	if c.R.Body == nil || c.R.Body == http.NoBody {
		return nil, true
	}
	body, err := io.ReadAll(io.LimitReader(c.R.Body, limit+1))
	if err != nil {
		WriteError(c.W, c.R, http.StatusBadRequest, CauseBodyUnreadable, MsgBodyUnreadable)
		return nil, false
	}
	if int64(len(body)) > limit {
		WriteError(c.W, c.R, http.StatusRequestEntityTooLarge, CauseBodyTooBig, MsgBodyTooBig)
		return nil, false
	}
	c.body = body
	c.R.Body = io.NopCloser(bytes.NewReader(body))
	return body, true
}

// SetBody replaces the body the upstream gets (JS middleware may rewrite
// it) and its Content-Length.
func (c *Call) SetBody(body []byte) {
	c.body, c.bodyRead = body, true
	c.R.Body = io.NopCloser(bytes.NewReader(body))
	c.R.ContentLength = int64(len(body))
}
