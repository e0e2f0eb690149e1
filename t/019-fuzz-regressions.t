# The fuzz harnesses of t/fuzz/ replayed over their seed corpora and every
# input a fuzzer ever failed on (t/fuzz/regressions/HARNESS/), without
# fuzzing: each harness built with gcc, AddressSanitizer and
# UndefinedBehaviorSanitizer around t/fuzz/replay.c (make fuzz-replay).
# A property that no longer holds, a crash, a leak or undefined behaviour
# fails the harness's test.  `make fuzz` is where new inputs are found.
use strict;
use warnings;
use FindBin;
use Test::More;

my $root = "$FindBin::Bin/..";

my @harnesses = map { m{/fuzz_(\w+)\.c$} ? $1 : () } glob "$root/t/fuzz/fuzz_*.c";
ok(scalar @harnesses >= 3, "harnesses found: @harnesses");

for my $h (@harnesses) {
    my $bin = "$root/build/fuzz/replay-$h";

    unless (ok(-x $bin, "$h: the replay driver is built")) {
        diag("build it with: make fuzz-replay");
        next;
    }

    # built with the sanitizers, not a plain build that reports nothing
    my $libs = `ldd '$bin' 2>&1`;
    like($libs, qr/libasan\.so/, "$h: linked with AddressSanitizer");
    like($libs, qr/libubsan\.so/, "$h: linked with UndefinedBehaviorSanitizer");

    my @dirs = grep { -d } ("$root/t/fuzz/corpus/$h", "$root/t/fuzz/regressions/$h");
    my @files = grep { -f && !m{/\.[^/]*$} } map { glob "$_/*" } @dirs;
    my $regressions = grep { m{/regressions/} } @files;

    ok(scalar(grep { m{/corpus/} } @files) > 0, "$h: a seed corpus");

    # leaks count; every report ends the run with an error status
    local $ENV{ASAN_OPTIONS} = 'detect_leaks=1:abort_on_error=0:exitcode=86';
    local $ENV{UBSAN_OPTIONS} = 'print_stacktrace=1:halt_on_error=1';

    my $out = `'$bin' @{[ map { "'$_'" } @dirs ]} 2>&1`;
    my $status = $? >> 8;

    is($status, 0, "$h: " . scalar(@files) . " inputs ($regressions regressions) "
                   . "replay with no failed property and no sanitizer report")
        or diag(join "\n", grep { !/^replay: / } split /\n/, $out);

    my ($n) = $out =~ /^replayed (\d+) inputs$/m;
    is($n, scalar @files, "$h: every input replayed");
}

done_testing();
