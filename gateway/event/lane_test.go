package event_test

import (
	"context"
	"errors"
	"sync/atomic"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/tollgate/tollgate/gateway/event"
)

// handlerFunc adapts a function to event.Handler.
type handlerFunc func(ctx context.Context, e event.Event) error

func (f handlerFunc) Handle(ctx context.Context, e event.Event) error { return f(ctx, e) }

// hangingHandler reports each event on started and then waits for its
// context to end, as a webhook to a target that never answers does, or for
// the spec to end.
func hangingHandler(started chan<- event.Event) event.Handler {
	GinkgoHelper()
	specEnded := make(chan struct{})
	DeferCleanup(func() { close(specEnded) }) // runs before the lanes close
	return handlerFunc(func(ctx context.Context, e event.Event) error {
		select {
		case started <- e:
		default:
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-specEnded:
			return errors.New("spec ended")
		}
	})
}

// recordingHandler sends each event to got.
func recordingHandler(got chan<- event.Event) event.Handler {
	return handlerFunc(func(_ context.Context, e event.Event) error {
		got <- e
		return nil
	})
}

var _ = Describe("Webhook lanes", Label("limits-hostile"), func() {
	var lanes *event.Lanes

	BeforeEach(func() {
		lanes = event.NewLanes()
		DeferCleanup(func(ctx SpecContext) error { return lanes.Close(ctx) }, NodeTimeout(5*time.Second))
	})

	When("one handler's target hangs with its lane full", func() {
		It("still delivers another handler's events at once", func(ctx SpecContext) {
			started := make(chan event.Event, 1)
			stuck := lanes.Add(hangingHandler(started), event.LaneOptions{QueueSize: 4, Workers: 1, Timeout: time.Minute})
			got := make(chan event.Event, 1)
			other := lanes.Add(recordingHandler(got), event.LaneOptions{})
			for range 10 {
				stuck.Offer(KeyExpiredEvent("k-stuck"))
			}
			Eventually(started).WithContext(ctx).Should(Receive())

			Expect(other.Offer(KeyExpiredEvent("k-other"))).To(BeTrue())
			Eventually(got).WithContext(ctx).WithTimeout(time.Second).Should(Receive(HaveField("Meta.Key", "k-other")))
		}, SpecTimeout(5*time.Second))
	})

	When("a lane's queue is full", func() {
		var lane *event.Lane
		BeforeEach(func(ctx SpecContext) {
			started := make(chan event.Event, 1)
			lane = lanes.Add(hangingHandler(started), event.LaneOptions{QueueSize: 2, Workers: 1, Timeout: time.Minute})
			lane.Offer(KeyExpiredEvent("k-1")) // taken by the worker
			Eventually(started).WithContext(ctx).Should(Receive())
			lane.Offer(KeyExpiredEvent("k-2")) // queued
			lane.Offer(KeyExpiredEvent("k-3")) // queued
		}, NodeTimeout(5*time.Second))

		It("drops a further event at once instead of blocking", func() {
			Expect(lane.Offer(KeyExpiredEvent("k-4"))).To(BeFalse())
			Expect(lane.Handle(context.Background(), KeyExpiredEvent("k-5"))).To(MatchError(event.ErrLaneFull))
		})

		It("counts what it dropped, for the lane and for all lanes", func() {
			lane.Offer(KeyExpiredEvent("k-4"))
			Expect(lane.Stats().Dropped).To(Equal(uint64(1)))
			Expect(lanes.Stats()).To(And(HaveField("Dropped", uint64(1)), HaveField("Pending", uint64(3))))
		})
	})

	When("a handler fails", func() {
		It("tells OnError and counts the failure", func(ctx SpecContext) {
			failures := make(chan error, 1)
			lane := lanes.Add(handlerFunc(func(context.Context, event.Event) error { return errors.New("refused") }),
				event.LaneOptions{OnError: func(_ event.Event, err error) { failures <- err }})
			lane.Offer(KeyExpiredEvent("k-1"))
			Eventually(failures).WithContext(ctx).Should(Receive(MatchError("refused")))
			Eventually(lanes.Stats).WithContext(ctx).Should(And(HaveField("Handled", uint64(1)), HaveField("Failed", uint64(1))))
		}, SpecTimeout(5*time.Second))
	})

	When("a handler runs past the lane's timeout", func() {
		It("is cut off, and the lane goes on with the next event", func(ctx SpecContext) {
			var calls atomic.Int32
			lane := lanes.Add(handlerFunc(func(hctx context.Context, e event.Event) error {
				if calls.Add(1) == 1 {
					<-hctx.Done()
					return hctx.Err()
				}
				return nil
			}), event.LaneOptions{Workers: 1, Timeout: 50 * time.Millisecond})
			lane.Offer(KeyExpiredEvent("k-1"))
			lane.Offer(KeyExpiredEvent("k-2"))
			Eventually(lanes.Stats).WithContext(ctx).Should(And(HaveField("Handled", uint64(2)), HaveField("Failed", uint64(1))))
		}, SpecTimeout(5*time.Second))
	})

	When("a lane is retired, as a reload retires the old API's", func() {
		It("refuses later events", func() {
			lane := lanes.Add(recordingHandler(make(chan event.Event, 1)), event.LaneOptions{})
			lane.Retire(time.Second)
			Expect(lane.Offer(KeyExpiredEvent("k-1"))).To(BeFalse())
		})

		It("still delivers what it had queued", func(ctx SpecContext) {
			release := make(chan struct{})
			var handled atomic.Int32
			lane := lanes.Add(handlerFunc(func(context.Context, event.Event) error {
				<-release
				handled.Add(1)
				return nil
			}), event.LaneOptions{Workers: 1})
			for range 3 {
				lane.Offer(KeyExpiredEvent("k"))
			}
			lane.Retire(time.Minute)
			close(release)
			Eventually(handled.Load).WithContext(ctx).Should(Equal(int32(3)))
		}, SpecTimeout(5*time.Second))

		It("gives up on a hanging target once the grace has passed, dropping the rest", func(ctx SpecContext) {
			started := make(chan event.Event, 1)
			lane := lanes.Add(hangingHandler(started), event.LaneOptions{Workers: 1, Timeout: time.Minute})
			for range 4 {
				lane.Offer(KeyExpiredEvent("k"))
			}
			Eventually(started).WithContext(ctx).Should(Receive())
			lane.Retire(50 * time.Millisecond)
			Eventually(lane.Stats).WithContext(ctx).Should(And(HaveField("Handled", uint64(1)), HaveField("Dropped", uint64(3))))
			// The lane's worker has exited: the leak guard checks it.
		}, SpecTimeout(5*time.Second))
	})

	When("the lanes are closed", func() {
		It("delivers what is queued first", func(ctx SpecContext) {
			var handled atomic.Int32
			lane := lanes.Add(handlerFunc(func(context.Context, event.Event) error {
				handled.Add(1)
				return nil
			}), event.LaneOptions{Workers: 1})
			for range 5 {
				lane.Offer(KeyExpiredEvent("k"))
			}
			Expect(lanes.Close(ctx)).To(Succeed())
			Expect(handled.Load()).To(Equal(int32(5)))
		}, SpecTimeout(5*time.Second))

		It("cuts off a hanging handler when the deadline passes, and stops every worker", func(ctx SpecContext) {
			started := make(chan event.Event, 1)
			lane := lanes.Add(hangingHandler(started), event.LaneOptions{Workers: 1, Timeout: time.Minute})
			for range 3 {
				lane.Offer(KeyExpiredEvent("k"))
			}
			Eventually(started).WithContext(ctx).Should(Receive())
			deadline, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
			defer cancel()
			Expect(lanes.Close(deadline)).To(MatchError(context.DeadlineExceeded))
			Expect(lanes.Stats()).To(And(HaveField("Dropped", uint64(2)), HaveField("Pending", uint64(0))))
		}, SpecTimeout(5*time.Second))

		It("gives a lane added afterwards no workers: it drops everything", func(ctx SpecContext) {
			Expect(lanes.Close(ctx)).To(Succeed())
			lane := lanes.Add(recordingHandler(make(chan event.Event, 1)), event.LaneOptions{})
			Expect(lane.Offer(KeyExpiredEvent("k"))).To(BeFalse())
		}, SpecTimeout(5*time.Second))
	})
})
