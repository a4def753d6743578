//! Where the student is: the page (home, a lesson and its step, settings) read from and written
//! to the address's `#` part, so links, reloads and the browser's back button all work.

use crate::course::{LESSONS, LessonInfo, Screen, lesson, next_lesson, previous_lesson};

/// A page of the app.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route {
    /// The course's home page: the four lessons in order.
    Home,
    /// A lesson page, at one of its steps (an index into its screens).
    Lesson {
        /// The lesson.
        info: &'static LessonInfo,
        /// Index of the step in `info.screens`.
        screen: usize,
    },
    /// What is stored in this browser, and how to clear it.
    Settings,
}

impl Route {
    /// Reads a route from the address's hash (`#/lesson/02/run`); anything unknown is home.
    pub fn from_hash(hash: &str) -> Self {
        let path = hash.trim_start_matches('#').trim_matches('/');
        let mut parts = path.split('/');
        match (parts.next(), parts.next(), parts.next()) {
            (Some("settings"), None, None) => Route::Settings,
            (Some("lesson"), Some(number), screen) => match lesson(number) {
                Some(info) => Route::Lesson {
                    info,
                    screen: screen
                        .and_then(|name| info.screens.iter().position(|s| s.name() == name))
                        .unwrap_or(0),
                },
                None => Route::Home,
            },
            _ => Route::Home,
        }
    }

    /// The hash that leads to this route.
    pub fn to_hash(self) -> String {
        match self {
            Route::Home => "#/".into(),
            Route::Settings => "#/settings".into(),
            Route::Lesson { info, screen: 0 } => format!("#/lesson/{}", info.number),
            Route::Lesson { info, screen } => {
                let name = info.screens.get(screen).map(|s| s.name()).unwrap_or("idea");
                format!("#/lesson/{}/{name}", info.number)
            }
        }
    }

    /// The first step of lesson `number`.
    pub fn lesson_start(number: &str) -> Self {
        match lesson(number) {
            Some(info) => Route::Lesson { info, screen: 0 },
            None => Route::Home,
        }
    }

    /// The step shown, on a lesson page.
    pub fn screen(self) -> Option<Screen> {
        match self {
            Route::Lesson { info, screen } => info.screens.get(screen).copied(),
            _ => None,
        }
    }

    /// The presenter's next step: the next screen, then the next lesson, home after the last.
    pub fn next(self) -> Self {
        match self {
            Route::Home => Route::lesson_start(LESSONS[0].number),
            Route::Settings => Route::Home,
            Route::Lesson { info, screen } if screen + 1 < info.screens.len() => Route::Lesson {
                info,
                screen: screen + 1,
            },
            Route::Lesson { info, .. } => match next_lesson(info.number) {
                Some(next) => Route::Lesson {
                    info: next,
                    screen: 0,
                },
                None => Route::Home,
            },
        }
    }

    /// The presenter's previous step: the previous screen, then the end of the previous lesson.
    pub fn previous(self) -> Self {
        match self {
            Route::Home | Route::Settings => Route::Home,
            Route::Lesson { info, screen } if screen > 0 => Route::Lesson {
                info,
                screen: screen - 1,
            },
            Route::Lesson { info, .. } => match previous_lesson(info.number) {
                Some(previous) => Route::Lesson {
                    info: previous,
                    screen: previous.screens.len() - 1,
                },
                None => Route::Home,
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_round_trip() {
        for hash in [
            "#/",
            "#/settings",
            "#/lesson/02",
            "#/lesson/03/layers",
            "#/lesson/04/run",
        ] {
            assert_eq!(Route::from_hash(hash).to_hash(), hash, "{hash}");
        }
        assert_eq!(Route::from_hash(""), Route::Home);
        assert_eq!(Route::from_hash("#/lesson/09"), Route::Home);
        assert_eq!(
            Route::from_hash("#/lesson/02/nowhere").to_hash(),
            "#/lesson/02"
        );
        assert_eq!(
            Route::from_hash("#/lesson/01/results").screen(),
            Some(Screen::Results)
        );
    }

    #[test]
    fn the_presenter_walks_every_step_of_every_lesson_and_back() {
        let mut route = Route::Home;
        let mut steps = Vec::new();
        loop {
            route = route.next();
            if route == Route::Home {
                break;
            }
            steps.push(route);
        }
        let expected: usize = LESSONS.iter().map(|l| l.screens.len()).sum();
        assert_eq!(steps.len(), expected);
        assert_eq!(
            steps.first().map(|r| r.to_hash()).as_deref(),
            Some("#/lesson/01")
        );
        assert_eq!(
            steps.last().map(|r| r.to_hash()).as_deref(),
            Some("#/lesson/04/questions")
        );
        for pair in steps.windows(2) {
            assert_eq!(pair[1].previous(), pair[0]);
        }
        assert_eq!(steps[0].previous(), Route::Home);
    }
}
