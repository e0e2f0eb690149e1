# The queue's history for the admin page's chart, tested on its own with
# the clocks driven by the test: see t/unit/history_test.c.
use strict;
use warnings;
use FindBin;

# built against the nginx under test (make test passes its build folder)
my $bin = ($ENV{SEADRAGON_BUILD} || "$FindBin::Bin/../build") . "/history-test";
unless (-x $bin) {
    print "1..0 # SKIP build/history-test is not built: run make unit\n";
    exit 0;
}
exec $bin or die "cannot run $bin: $!";
