# The scheduler's fair shares, affinity and model slots, tested on their
# own: see t/unit/fair_test.c.
use strict;
use warnings;
use FindBin;

# built against the nginx under test (make test passes its build folder)
my $bin = ($ENV{SEADRAGON_BUILD} || "$FindBin::Bin/../build") . "/fair-test";
unless (-x $bin) {
    print "1..0 # SKIP build/fair-test is not built: run make unit\n";
    exit 0;
}
exec $bin or die "cannot run $bin: $!";
