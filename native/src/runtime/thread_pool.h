// thread_pool.h: the one worker pool of the process, shared by every operator and every
// concurrent call, so parallel requests queue for the cores instead of oversubscribing them.
#pragma once
#include <cstddef>
#include <functional>

namespace lowbit {

// Runs task(i) for i in [0, count), spread over the pool; the calling thread takes part.
// Calls from several threads at once are served one after another. A task must not call
// parallel_for itself. The first exception a task throws is rethrown here after all tasks end.
void parallel_for(size_t count, const std::function<void(size_t)>& task);

}  // namespace lowbit
