package specs_test

import (
	"context"
	"sync/atomic"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/tollgate/tollgate/gateway/event"
)

var _ = Describe("The event bus", Label("events"), func() {
	var bus *event.Bus

	When("a subscriber is listening", func() {
		BeforeEach(func() {
			bus = event.NewBus(event.Options{QueueSize: 4, Workers: 2})
			DeferCleanup(bus.Close)
		})

		It("delivers each published event to it", func(ctx SpecContext) {
			got := make(chan event.Event, 1)
			DeferCleanup(bus.Subscribe(func(e event.Event) { got <- e }))
			Expect(bus.Publish(event.Event{Type: event.KeyExpired, APIID: "a"})).To(BeTrue())
			Eventually(got).WithContext(ctx).Should(Receive(HaveField("APIID", "a")))
		}, SpecTimeout(5*time.Second))
	})

	When("the queue is full because the subscribers are busy", func() {
		var release chan struct{}
		BeforeEach(func() {
			bus = event.NewBus(event.Options{QueueSize: 2, Workers: 1})
			release = make(chan struct{})
			started := make(chan struct{}, 1)
			DeferCleanup(bus.Close) // runs after release is closed below
			DeferCleanup(func() { close(release) })
			bus.Subscribe(func(event.Event) {
				select {
				case started <- struct{}{}:
				default:
				}
				<-release
			})
			bus.Publish(event.Event{Type: event.KeyExpired}) // taken by the worker
			<-started
			bus.Publish(event.Event{Type: event.KeyExpired}) // queued
			bus.Publish(event.Event{Type: event.KeyExpired}) // queued
		})

		It("drops a further event at once instead of blocking the publisher", func() {
			Expect(bus.Publish(event.Event{Type: event.KeyExpired})).To(BeFalse())
		})

		It("counts what it dropped", func() {
			bus.Publish(event.Event{Type: event.KeyExpired})
			Expect(bus.Dropped()).To(Equal(uint64(1)))
		})
	})

	When("it is closed", func() {
		It("delivers the events already queued first", func(ctx SpecContext) {
			bus = event.NewBus(event.Options{QueueSize: 8, Workers: 1})
			var delivered atomic.Int64
			bus.Subscribe(func(event.Event) { delivered.Add(1) })
			for range 5 {
				bus.Publish(event.Event{Type: event.KeyExpired})
			}
			Expect(bus.Close(ctx)).To(Succeed())
			Expect(delivered.Load()).To(Equal(int64(5)))
		}, SpecTimeout(5*time.Second))

		It("refuses later events", func(ctx SpecContext) {
			bus = event.NewBus(event.Options{})
			Expect(bus.Close(ctx)).To(Succeed())
			Expect(bus.Publish(event.Event{Type: event.KeyExpired})).To(BeFalse())
		}, SpecTimeout(5*time.Second))

		It("gives up delivering when its deadline passes, and still stops every worker", func(ctx SpecContext) {
			bus = event.NewBus(event.Options{QueueSize: 8, Workers: 1})
			release := make(chan struct{})
			bus.Subscribe(func(event.Event) { <-release })
			for range 5 {
				bus.Publish(event.Event{Type: event.KeyExpired})
			}
			deadline, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
			defer cancel()
			closed := make(chan error, 1)
			go func() { closed <- bus.Close(deadline) }()
			Eventually(deadline.Done()).WithContext(ctx).Should(BeClosed())
			close(release) // the subscriber holding the worker returns
			Eventually(closed).WithContext(ctx).Should(Receive(MatchError(context.DeadlineExceeded)))
			Expect(bus.Dropped()).To(BeNumerically(">=", 3))
		}, SpecTimeout(5*time.Second))
	})
})
