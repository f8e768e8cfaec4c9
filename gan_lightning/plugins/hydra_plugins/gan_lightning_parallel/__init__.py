"""``hydra/launcher=parallel`` as Hydra finds launchers: hydra-joblib-launcher's launcher, which a stop signal may meet
while it starts its worker processes (gan_lightning.sweeps.parallel says what happens then)."""

from typing import Sequence

from hydra.core.utils import JobReturn
from hydra_plugins.hydra_joblib_launcher.joblib_launcher import JoblibLauncher


class ParallelLauncher(JoblibLauncher):
    """The jobs of a multirun side by side in joblib's worker processes; a sweep stopped before its workers run their
    jobs ends as stopped, not with the pool's error."""

    def launch(self, job_overrides: Sequence[Sequence[str]], initial_job_idx: int) -> Sequence[JobReturn]:
        from gan_lightning.sweeps.parallel import launch_until_stopped

        return launch_until_stopped(lambda: super(ParallelLauncher, self).launch(job_overrides, initial_job_idx),
                                    self.config, len(job_overrides))  # fmt: skip
