# The queue's data structure, tested on its own: see t/unit/queue_test.c.
use strict;
use warnings;
use FindBin;

# built against the nginx under test (make test passes its build folder)
my $bin = ($ENV{SEADRAGON_BUILD} || "$FindBin::Bin/../build") . "/queue-test";
unless (-x $bin) {
    print "1..0 # SKIP build/queue-test is not built: run make unit\n";
    exit 0;
}
exec $bin or die "cannot run $bin: $!";
