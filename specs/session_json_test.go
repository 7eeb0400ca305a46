package specs_test

import (
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"reflect"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/tollgate/tollgate/gateway/session"
)

// plainSession has session.State's fields and JSON names and nothing else:
// what encoding/json writes for it is what a session's JSON must be.
type plainSession struct {
	Rate             float64                             `json:"rate"`
	Per              float64                             `json:"per"`
	Allowance        float64                             `json:"allowance"`
	LastCheck        int64                               `json:"last_check"`
	QuotaMax         int64                               `json:"quota_max"`
	QuotaRemaining   int64                               `json:"quota_remaining"`
	QuotaRenews      int64                               `json:"quota_renews"`
	QuotaRenewalRate int64                               `json:"quota_renewal_rate"`
	Expires          int64                               `json:"expires"`
	IsInactive       bool                                `json:"is_inactive"`
	AccessRights     map[string]session.AccessDefinition `json:"access_rights"`
	OrgID            string                              `json:"org_id"`
	MetaData         map[string]any                      `json:"meta_data"`
	Tags             []string                            `json:"tags"`
	Alias            string                              `json:"alias"`
	LastUpdated      string                              `json:"last_updated"`
	DateCreated      string                              `json:"date_created,omitempty"`
	SessionLifetime  int64                               `json:"session_lifetime"`
}

var _ = Describe("A session's JSON", func() {
	It("is what encoding/json writes for its fields, for 500 random sessions", func() {
		rng := rand.New(rand.NewPCG(3, 5))
		for i := range 500 {
			st := randomSession(rng)
			got, err := st.MarshalJSON() // as JS middleware gets it: no encoding/json pass after it
			Expect(err).NotTo(HaveOccurred())
			want, err := json.Marshal(plain(st))
			Expect(err).NotTo(HaveOccurred())
			Expect(string(got)).To(Equal(string(want)), "session %d", i)
		}
	})

	It("is refused, as encoding/json refuses it, when a number is not finite", func() {
		_, err := json.Marshal(session.State{Rate: math.NaN()})
		Expect(err).To(MatchError(ContainSubstring("unsupported value: NaN")))
	})

	// The comparison above means something only while plainSession
	// mirrors State: a field added to State, or renamed in JSON, fails here.
	It("is compared with a mirror that has State's fields, under the same names", func() {
		fields := func(t reflect.Type) []string {
			var out []string
			for i := range t.NumField() {
				if f := t.Field(i); f.IsExported() {
					out = append(out, f.Name+" "+f.Tag.Get("json"))
				}
			}
			return out
		}
		Expect(fields(reflect.TypeFor[session.State]())).To(Equal(fields(reflect.TypeFor[plainSession]())))
	})
})

// plain copies st's fields into a plainSession.
func plain(st session.State) plainSession {
	return plainSession{
		Rate: st.Rate, Per: st.Per, Allowance: st.Allowance, LastCheck: st.LastCheck,
		QuotaMax: st.QuotaMax, QuotaRemaining: st.QuotaRemaining, QuotaRenews: st.QuotaRenews,
		QuotaRenewalRate: st.QuotaRenewalRate, Expires: st.Expires, IsInactive: st.IsInactive,
		AccessRights: st.AccessRights, OrgID: st.OrgID, MetaData: st.MetaData, Tags: st.Tags,
		Alias: st.Alias, LastUpdated: st.LastUpdated, DateCreated: st.DateCreated, SessionLifetime: st.SessionLifetime,
	}
}

// randomSession fills every field with values that need care in JSON:
// fractions, exponents and negative zero, large integers, strings with
// quotes, HTML characters, control characters, non-ASCII text and invalid
// UTF-8, and nil, empty and full maps and lists.
func randomSession(rng *rand.Rand) session.State {
	floats := []float64{0, math.Copysign(0, -1), 1, -1, 0.5, 1.0 / 3, 1000, 1e-6, 9.99e-7, 1e20, 1e21, -2.5e-9, 123456.789, math.MaxFloat64}
	ints := []int64{0, 1, -1, 1700000000, math.MaxInt64, math.MinInt64}
	strs := []string{"", "key", `q"uote`, `back\slash`, "<b>&amp;</b>", "tab\tnl\n", "\x01", "ünï", "🚀", "\u2028", "bad\xffutf8"}
	str := func() string { return strs[rng.IntN(len(strs))] }
	list := func() []string {
		switch rng.IntN(3) {
		case 0:
			return nil
		case 1:
			return []string{}
		}
		return []string{str(), str()}
	}
	st := session.State{
		Rate: floats[rng.IntN(len(floats))], Per: floats[rng.IntN(len(floats))], Allowance: floats[rng.IntN(len(floats))],
		LastCheck: ints[rng.IntN(len(ints))], QuotaMax: ints[rng.IntN(len(ints))], QuotaRemaining: ints[rng.IntN(len(ints))],
		QuotaRenews: ints[rng.IntN(len(ints))], QuotaRenewalRate: ints[rng.IntN(len(ints))], Expires: ints[rng.IntN(len(ints))],
		IsInactive: rng.IntN(2) == 0, OrgID: str(), Tags: list(), Alias: str(), LastUpdated: str(),
		SessionLifetime: ints[rng.IntN(len(ints))],
	}
	if rng.IntN(2) == 0 {
		st.DateCreated = str()
	}
	if n := rng.IntN(4); n > 0 {
		st.AccessRights = map[string]session.AccessDefinition{}
		for i := range n - 1 {
			ad := session.AccessDefinition{APIName: str(), APIID: str(), Versions: list()}
			for range rng.IntN(3) {
				ad.AllowedURLs = append(ad.AllowedURLs, session.AccessSpec{URL: str(), Methods: list()})
			}
			st.AccessRights[fmt.Sprintf("%s-%d", str(), i)] = ad
		}
	}
	if rng.IntN(2) == 0 {
		st.MetaData = map[string]any{str(): str(), "n": floats[rng.IntN(len(floats))], "nested": map[string]any{"list": []any{str(), true, nil}}}
	}
	return st
}
