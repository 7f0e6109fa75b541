package dev.ferry.protocol.net;

import static org.assertj.core.api.Assertions.assertThat;

import java.util.SplittableRandom;
import org.junit.jupiter.api.Test;

/** F9's switchover round trip: what a quiet link costs, not what a keepalive caught behind a bulk pass. */
class RoundTripsTest {
    private static final long MS = 1_000_000;

    @Test
    void nothingBeforeTheFirstSample() {
        assertThat(new RoundTrips().quietest()).isEqualTo(-1);
    }

    @Test
    void aBusySampleDoesNotOutweighAQuietOne() {
        RoundTrips trips = new RoundTrips();
        trips.add(MS);
        trips.add(175 * MS);
        assertThat(trips.quietest()).isEqualTo(MS);
    }

    @Test
    void aBusySampleIsForgottenAsSoonAsAQuietOneArrives() {
        RoundTrips trips = new RoundTrips();
        trips.add(175 * MS);
        assertThat(trips.quietest()).isEqualTo(175 * MS);
        trips.add(2 * MS);
        assertThat(trips.quietest()).isEqualTo(2 * MS);
    }

    @Test
    void aLinkThatBecameSlowerForGoodIsFollowedOnceTheWindowHasPassed() {
        RoundTrips trips = new RoundTrips();
        trips.add(MS);
        for (int i = 0; i < RoundTrips.WINDOW - 1; i++) {
            trips.add(40 * MS);
            assertThat(trips.quietest()).isEqualTo(MS);
        }
        trips.add(40 * MS);
        assertThat(trips.quietest()).isEqualTo(40 * MS);
    }

    /** Seeded: after any sequence, the answer is the minimum of the last WINDOW samples. */
    @Test
    void alwaysTheSmallestOfTheLastWindow() {
        SplittableRandom random = new SplittableRandom(20261201);
        RoundTrips trips = new RoundTrips();
        long[] all = new long[500];
        for (int i = 0; i < all.length; i++) {
            all[i] = random.nextLong(1, 300 * MS);
            trips.add(all[i]);
            long expected = Long.MAX_VALUE;
            for (int j = Math.max(0, i - RoundTrips.WINDOW + 1); j <= i; j++) {
                expected = Math.min(expected, all[j]);
            }
            assertThat(trips.quietest()).as("after sample %d", i).isEqualTo(expected);
        }
    }
}
