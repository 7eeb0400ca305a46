// Package session holds Tyk's SessionState: what a key may do (access
// rights, rate limit, quota, expiry), its Redis store under apikey-<key>,
// and the gateway's in-memory cache of sessions.
//
//	opts := session.StoreOptions{HashKeys: true, HashFunction: "murmur64"}
//	if err := opts.Validate(); err != nil { ... } // names the tyk.conf setting
//	store := session.NewStore(client, opts)
//	key, _ := store.GenerateKey(orgID, "")  // a Tyk token naming murmur64
//	id := store.ID(key)                     // the hash Tyk stores it under
//	err := store.Save(ctx, id, &session.State{Rate: 10, Per: 1}, 0)
//	st, id, err := store.Find(ctx, orgID, key) // as Tyk authenticates a key
//	st, err = store.Load(ctx, id)              // session.ErrNotFound when absent
//
// Keys are named in Redis exactly as Tyk 5.14 names them, so Tyk and
// tollgate can share one Redis: see Hash, GenerateToken and Candidates.
package session

import (
	"bytes"
	"encoding/json"
	"fmt"
	"maps"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/tollgate/tollgate/internal/jsonw"
)

// State is Tyk's SessionState with its JSON names. Fields tollgate does
// not act on are kept as they came and written back unchanged, so a key
// saved by Tyk or a Tyk client loses nothing when tollgate rewrites it.
type State struct {
	// Rate requests are allowed per Per seconds; Rate <= 0 means no limit.
	Rate float64 `json:"rate"`
	Per  float64 `json:"per"`
	// Allowance and LastCheck are Tyk's leaky-bucket bookkeeping, kept for
	// compatibility; tollgate's limiter keeps its state in Redis.
	Allowance float64 `json:"allowance"`
	LastCheck int64   `json:"last_check"`
	// QuotaMax requests per QuotaRenewalRate seconds; QuotaMax <= 0 means
	// no quota; QuotaRenewalRate 0 or -1 (Tyk's "never") means the count
	// never resets. QuotaRemaining and QuotaRenews (unix seconds) are
	// reported back after each request.
	QuotaMax         int64 `json:"quota_max"`
	QuotaRemaining   int64 `json:"quota_remaining"`
	QuotaRenews      int64 `json:"quota_renews"`
	QuotaRenewalRate int64 `json:"quota_renewal_rate"`
	// Expires is a unix time after which the key is refused (401, and a
	// KeyExpired event); 0 or less means never.
	Expires int64 `json:"expires"`
	// IsInactive keys are refused with 403.
	IsInactive bool `json:"is_inactive"`
	// AccessRights by API id; a key may call only the APIs (and versions)
	// listed here.
	AccessRights map[string]AccessDefinition `json:"access_rights"`
	OrgID        string                      `json:"org_id"`
	// MetaData is free-form; JS middleware reads and replaces it.
	MetaData map[string]any `json:"meta_data"`
	Tags     []string       `json:"tags"`
	Alias    string         `json:"alias"`
	// LastUpdated is a unix time, as a string (Tyk's format).
	LastUpdated string `json:"last_updated"`
	DateCreated string `json:"date_created,omitempty"`
	// SessionLifetime, in seconds, bounds how long Redis keeps the key;
	// 0 means no TTL.
	SessionLifetime int64 `json:"session_lifetime"`

	// extra holds the fields of the stored JSON that State does not model.
	extra map[string]json.RawMessage
}

// AccessDefinition is one entry of access_rights.
type AccessDefinition struct {
	APIName string `json:"api_name"`
	APIID   string `json:"api_id"`
	// Versions the key may use on a versioned API; empty means none
	// (Tyk's AccessRightsCheck). A not_versioned API needs none.
	Versions []string `json:"versions"`
	// AllowedURLs, when any are listed, are the only paths and methods the
	// key may call on the API (Tyk's granular access).
	AllowedURLs []AccessSpec `json:"allowed_urls,omitempty"`
}

// AccessSpec is one entry of allowed_urls: a path pattern (a regular
// expression; "{name}" stands for one path segment) and the methods it
// allows, matched case-sensitively as Tyk does.
type AccessSpec struct {
	URL     string   `json:"url"`
	Methods []string `json:"methods"`
}

// knownFields are State's JSON names, so unmarshalling can tell which
// fields to keep aside as extra.
var knownFields = map[string]bool{
	"rate": true, "per": true, "allowance": true, "last_check": true,
	"quota_max": true, "quota_remaining": true, "quota_renews": true, "quota_renewal_rate": true,
	"expires": true, "is_inactive": true, "access_rights": true, "org_id": true,
	"meta_data": true, "tags": true, "alias": true, "last_updated": true,
	"date_created": true, "session_lifetime": true,
}

// plainState is State without its JSON methods.
type plainState State

// UnmarshalJSON decodes a stored session, keeping unknown fields. Sessions
// written by tollgate have none, so the common case is one strict decode;
// only a session with other fields is read a second time to keep them.
func (s *State) UnmarshalJSON(data []byte) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	var plain plainState
	err := dec.Decode(&plain)
	if err == nil {
		*s = State(plain)
		s.extra = nil
		return nil
	}
	if !strings.HasPrefix(err.Error(), "json: unknown field") {
		return err
	}
	if err := json.Unmarshal(data, (*plainState)(s)); err != nil {
		return err
	}
	var all map[string]json.RawMessage
	if err := json.Unmarshal(data, &all); err != nil {
		return err
	}
	maps.DeleteFunc(all, func(k string, _ json.RawMessage) bool { return knownFields[k] })
	s.extra = all
	return nil
}

// MarshalJSON encodes the session with the unknown fields it was read with.
func (s State) MarshalJSON() ([]byte, error) {
	known, err := s.appendKnown(make([]byte, 0, 512))
	if err != nil || len(s.extra) == 0 {
		return known, err
	}
	merged := maps.Clone(s.extra)
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(known, &fields); err != nil {
		return nil, err
	}
	maps.Copy(merged, fields)
	return json.Marshal(merged)
}

// Clone is a deep copy, so a cached session is never changed by a request.
func (s *State) Clone() *State {
	c := *s
	c.AccessRights = maps.Clone(s.AccessRights)
	for k, v := range c.AccessRights {
		v.Versions = append([]string(nil), v.Versions...)
		if v.AllowedURLs != nil {
			urls := make([]AccessSpec, len(v.AllowedURLs))
			for i, u := range v.AllowedURLs {
				urls[i] = AccessSpec{URL: u.URL, Methods: append([]string(nil), u.Methods...)}
			}
			v.AllowedURLs = urls
		}
		c.AccessRights[k] = v
	}
	c.MetaData = maps.Clone(s.MetaData)
	c.Tags = append([]string(nil), s.Tags...)
	c.extra = maps.Clone(s.extra)
	return &c
}

// Expired reports whether the key's expiry has passed at now, to the
// nanosecond, as Tyk's KeyExpired compares it: a key is refused from the
// instant after expires, not a second later.
func (s *State) Expired(now time.Time) bool {
	return s.Expires >= 1 && now.After(time.Unix(s.Expires, 0))
}

// appendKnown appends the JSON of the modelled fields, byte for byte what
// encoding/json writes for plainState, without its reflection: JS
// middleware that needs the session has it encoded on every request.
// Values encoding/json refuses (NaN, infinities) and meta_data go through
// encoding/json itself.
func (s *State) appendKnown(b []byte) ([]byte, error) {
	for _, f := range [...]float64{s.Rate, s.Per, s.Allowance} {
		if math.IsNaN(f) || math.IsInf(f, 0) {
			return json.Marshal(plainState(*s))
		}
	}
	b = append(b, `{"rate":`...)
	b = jsonw.AppendFloat(b, s.Rate)
	b = append(b, `,"per":`...)
	b = jsonw.AppendFloat(b, s.Per)
	b = append(b, `,"allowance":`...)
	b = jsonw.AppendFloat(b, s.Allowance)
	b = append(b, `,"last_check":`...)
	b = strconv.AppendInt(b, s.LastCheck, 10)
	b = append(b, `,"quota_max":`...)
	b = strconv.AppendInt(b, s.QuotaMax, 10)
	b = append(b, `,"quota_remaining":`...)
	b = strconv.AppendInt(b, s.QuotaRemaining, 10)
	b = append(b, `,"quota_renews":`...)
	b = strconv.AppendInt(b, s.QuotaRenews, 10)
	b = append(b, `,"quota_renewal_rate":`...)
	b = strconv.AppendInt(b, s.QuotaRenewalRate, 10)
	b = append(b, `,"expires":`...)
	b = strconv.AppendInt(b, s.Expires, 10)
	b = append(b, `,"is_inactive":`...)
	b = strconv.AppendBool(b, s.IsInactive)
	b = append(b, `,"access_rights":`...)
	if s.AccessRights == nil {
		b = append(b, "null"...)
	} else {
		b = append(b, '{')
		for i, id := range slices.Sorted(maps.Keys(s.AccessRights)) {
			if i > 0 {
				b = append(b, ',')
			}
			ad := s.AccessRights[id]
			b = jsonw.AppendString(b, id)
			b = append(b, `:{"api_name":`...)
			b = jsonw.AppendString(b, ad.APIName)
			b = append(b, `,"api_id":`...)
			b = jsonw.AppendString(b, ad.APIID)
			b = append(b, `,"versions":`...)
			b = appendStrings(b, ad.Versions)
			if len(ad.AllowedURLs) > 0 {
				b = append(b, `,"allowed_urls":[`...)
				for j, u := range ad.AllowedURLs {
					if j > 0 {
						b = append(b, ',')
					}
					b = append(b, `{"url":`...)
					b = jsonw.AppendString(b, u.URL)
					b = append(b, `,"methods":`...)
					b = appendStrings(b, u.Methods)
					b = append(b, '}')
				}
				b = append(b, ']')
			}
			b = append(b, '}')
		}
		b = append(b, '}')
	}
	b = append(b, `,"org_id":`...)
	b = jsonw.AppendString(b, s.OrgID)
	b = append(b, `,"meta_data":`...)
	if s.MetaData == nil {
		b = append(b, "null"...)
	} else {
		meta, err := json.Marshal(s.MetaData)
		if err != nil {
			return nil, err
		}
		b = append(b, meta...)
	}
	b = append(b, `,"tags":`...)
	b = appendStrings(b, s.Tags)
	b = append(b, `,"alias":`...)
	b = jsonw.AppendString(b, s.Alias)
	b = append(b, `,"last_updated":`...)
	b = jsonw.AppendString(b, s.LastUpdated)
	if s.DateCreated != "" {
		b = append(b, `,"date_created":`...)
		b = jsonw.AppendString(b, s.DateCreated)
	}
	b = append(b, `,"session_lifetime":`...)
	b = strconv.AppendInt(b, s.SessionLifetime, 10)
	return append(b, '}'), nil
}

// appendStrings writes a string list, null when nil.
func appendStrings(b []byte, list []string) []byte {
	if list == nil {
		return append(b, "null"...)
	}
	b = append(b, '[')
	for i, s := range list {
		if i > 0 {
			b = append(b, ',')
		}
		b = jsonw.AppendString(b, s)
	}
	return append(b, ']')
}

// Limits of a session's numbers, checked by Validate: beyond them the
// arithmetic of windows and TTLs would overflow.
const (
	maxRate     = 1e9
	maxSeconds  = 10 * 365 * 24 * 3600 // ten years
	maxQuotaMax = 1 << 53
)

// Validate refuses numbers a session cannot mean, naming the field:
// negative rate, per, quota or lifetimes (except Tyk's -1 for "no
// limit" where Tyk has it), a rate without a period, and values so large
// that time or counter arithmetic would overflow.
func (s *State) Validate() error {
	switch {
	case math.IsNaN(s.Rate) || s.Rate < 0 && s.Rate != -1 || s.Rate > maxRate:
		return fmt.Errorf("rate: %v is not a number of requests from 0 to %g (-1: no limit)", s.Rate, float64(maxRate))
	case math.IsNaN(s.Per) || s.Per < 0 || s.Per > maxSeconds:
		return fmt.Errorf("per: %v is not a number of seconds from 0 to %d", s.Per, maxSeconds)
	case s.Rate > 0 && s.Per == 0:
		return fmt.Errorf("per: 0 with rate %v; give the period in seconds the rate applies to", s.Rate)
	case s.QuotaMax < -1 || s.QuotaMax > maxQuotaMax:
		return fmt.Errorf("quota_max: %d is not a number of requests from 0 to %d (-1: no quota)", s.QuotaMax, int64(maxQuotaMax))
	case s.QuotaRenewalRate < -1 || s.QuotaRenewalRate > maxSeconds:
		return fmt.Errorf("quota_renewal_rate: %d is not a number of seconds from 0 to %d (0 or -1: never renews)", s.QuotaRenewalRate, maxSeconds)
	case s.SessionLifetime < 0 || s.SessionLifetime > maxSeconds:
		return fmt.Errorf("session_lifetime: %d is not a number of seconds from 0 to %d", s.SessionLifetime, maxSeconds)
	case s.Expires < 0:
		return fmt.Errorf("expires: %d is negative; 0 means the key never expires", s.Expires)
	}
	return nil
}
