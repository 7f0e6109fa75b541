package dev.ferry.orchestrator.migration;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import org.awaitility.Awaitility;
import org.junit.jupiter.api.Test;

/** F4/F5's point of no return, and a cancel's answer, which what follows never contradicts. */
class CommitPointTest {
    @Test
    void aCancelBeforeTheCommitHoldsAndTheCommitIsRefused() throws Exception {
        CommitPoint point = new CommitPoint();
        assertThat(point.cancel(MigrationFailure.CANCELLED, 0)).isTrue();
        assertThat(point.closed()).isTrue();
        assertThatThrownBy(point::beginCommit).isInstanceOfSatisfying(MigrationFailure.class,
                f -> assertThat(f.code()).isEqualTo(MigrationFailure.CANCELLED));
        assertThat(point.fail()).isEqualTo(new CommitPoint.Failure(false, MigrationFailure.CANCELLED));
    }

    @Test
    void aCancelWhileCommitIsWrittenWaitsAndIsTooLateOnceItIsWritten() throws Exception {
        CommitPoint point = new CommitPoint();
        point.beginCommit();
        CompletableFuture<Boolean> cancel = CompletableFuture.supplyAsync(() -> cancel(point, 10_000));
        Awaitility.await().pollDelay(java.time.Duration.ofMillis(50)).until(() -> !cancel.isDone());
        point.committed();
        assertThat(cancel.get(5, TimeUnit.SECONDS)).as("too late").isFalse();
        assertThat(point.fail()).isEqualTo(new CommitPoint.Failure(true, null));
    }

    @Test
    void aCancelWhileCommitIsWrittenHoldsWhenTheCommitIsWithdrawn() throws Exception {
        CommitPoint point = new CommitPoint();
        point.beginCommit();
        CompletableFuture<Boolean> cancel = CompletableFuture.supplyAsync(() -> cancel(point, 10_000));
        Awaitility.await().pollDelay(java.time.Duration.ofMillis(50)).until(() -> !cancel.isDone());
        point.withdrawn();
        assertThat(cancel.get(5, TimeUnit.SECONDS)).as("the migration rolls back, as the cancel said").isTrue();
        assertThat(point.fail().committed()).isFalse();
    }

    @Test
    void aCancelAfterTheCommitIsTooLateAndAFailureThenIsPastTheCommit() throws Exception {
        CommitPoint point = new CommitPoint();
        point.commit();
        assertThat(point.cancel(MigrationFailure.SHUTDOWN, 0)).isFalse();
        assertThat(point.fail()).isEqualTo(new CommitPoint.Failure(true, null));
    }

    @Test
    void aFailureClosesThePointSoNoCommitFollows() {
        CommitPoint point = new CommitPoint();
        assertThat(point.fail()).isEqualTo(new CommitPoint.Failure(false, null));
        assertThatThrownBy(point::beginCommit).isInstanceOf(MigrationFailure.class);
    }

    private static boolean cancel(CommitPoint point, long waitMillis) {
        try {
            return point.cancel(MigrationFailure.CANCELLED, waitMillis);
        } catch (InterruptedException e) {
            throw new IllegalStateException(e);
        }
    }
}
